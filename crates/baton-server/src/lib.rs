//! The identity HTTP API: Keystone v3 version discovery and the token API (issue, validate,
//! check, revoke, catalog and scopes), with Keystone's policy rules, status codes, error bodies
//! and headers. The router is built by [`router`] and can be driven without a socket; [`serve`]
//! runs it on a listener with Baton's connection limits and background refreshers.
//!
//! Limits on clients (`[baton]`): at most `max_connections` connections are served at once
//! (further ones wait in the listen backlog); a request head must arrive within
//! `header_timeout` seconds (also the idle limit of a keep-alive connection) and a request body
//! within `body_timeout` seconds of its head (else 408 and the connection closes); heads are
//! bounded by [`MAX_HEADER_BYTES`] and bodies by `[oslo_middleware] max_request_body_size`.
//! With `[baton] tls_cert_file` / `tls_key_file` connections are TLS (`baton_config::tls`: the
//! pair is reloaded when its files change, for new connections only).

pub mod api;
pub mod audit;
pub mod bootstrap;
pub mod changes;
pub mod clock;
pub mod directory;
pub mod ec2_signature;
pub mod error;
pub mod fleet;
pub mod identity;
pub mod oauth1_signature;
pub mod password;
pub mod policy;
pub mod revocations;
pub mod throttle;
pub mod tokens;

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::Body;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{header, HeaderMap, HeaderName, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};
use axum::Router;
use baton_config::IdentityConfig;
use baton_store::Store;
use baton_token::{PayloadCodec, TokenFormatter};
use bytes::Bytes;
use hyper::body::{Frame, SizeHint};

pub use baton_types::token_fingerprint;
pub use error::{ApiError, ApiResult};
pub use tokens::{TokenService, ValidatedToken};

/// Everything a request handler needs, shared: a clone (axum makes several per request, one
/// per middleware and extractor) is one reference count, whatever the fields. The fields are
/// those of [`AppStateParts`].
#[derive(Clone)]
pub struct AppState(Arc<AppStateParts>);

impl std::ops::Deref for AppState {
    type Target = AppStateParts;

    fn deref(&self) -> &AppStateParts {
        &self.0
    }
}

/// What [`AppState`] holds, one field per concern.
pub struct AppStateParts {
    /// keystone.conf as read at start.
    pub config: Arc<IdentityConfig>,
    /// The database (Keystone's schema).
    pub store: Store,
    /// Keystone's default rules overlaid with `[oslo_policy] policy_file`.
    pub policy: Arc<policy::Policy>,
    /// Issue, validate and revoke, with the validation cache, revocation list and snapshots.
    pub tokens: Arc<TokenService>,
    /// Every write to the identity model (its rules, revocation events, cache invalidation).
    pub identity: identity::Identity,
    /// Failed password logins per source address and per user name (`[baton] login_failures_*`).
    pub login_throttle: Arc<throttle::LoginThrottle>,
    /// This node in the fleet: shared keys, heartbeats, `key_lag` for health checks.
    pub fleet: Arc<fleet::Fleet>,
}

impl AppState {
    /// Builds the state from configuration: opens the database (which must hold Keystone's
    /// schema) and the Fernet key repository.
    pub async fn open(config: IdentityConfig) -> anyhow::Result<AppState> {
        AppState::open_with_clock(config, clock::Clock::system()).await
    }

    /// As [`AppState::open`], telling time by `clock` (tests pass a manual one).
    pub async fn open_with_clock(
        config: IdentityConfig,
        clock: clock::Clock,
    ) -> anyhow::Result<AppState> {
        let connection = config
            .database
            .connection
            .clone()
            .ok_or_else(|| anyhow::anyhow!("[database] connection is not set"))?;
        let policy = policy::Policy::load(
            &config.oslo_policy.policy_file,
            config.oslo_policy.policy_file_explicit,
        )?;
        let mut store = Store::connect(&connection).await?;
        store.set_password_history(config.security_compliance.unique_last_password_count);
        store.set_user_inactivity_limit(
            config
                .security_compliance
                .disable_user_account_days_inactive,
        );
        if !store.schema_is_current().await? {
            anyhow::bail!(
                "database {} does not hold Keystone's schema at the revision Baton serves: run `baton manage db_sync`",
                store.redacted_url()
            );
        }
        if config.unified_limit.enforcement_model == baton_config::EnforcementModel::StrictTwoLevel
        {
            // Keystone refuses to start too: the model's checks assume two levels.
            let deep = store.projects_deeper_than(2).await?;
            if !deep.is_empty() {
                anyhow::bail!(
                    "[unified_limit] enforcement_model = strict_two_level allows two levels of projects, but these are deeper: {}; use enforcement_model = flat or move them",
                    deep.join(", ")
                );
            }
        }
        let config = Arc::new(config);
        // The token keys: from key_repository, or from the database (key_distribution).
        let (fleet, ring) = fleet::Fleet::open(config.clone(), store.clone(), clock.clone())
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        let fleet = Arc::new(fleet);
        let codec = PayloadCodec::new(
            config.auth.methods.clone(),
            config.identity.default_domain_id.clone(),
        );
        let formatter = TokenFormatter::new(ring, codec);
        let tokens = TokenService::new(config.clone(), store.clone(), formatter, clock)
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        let tokens = Arc::new(tokens);
        Ok(AppState(Arc::new(AppStateParts {
            login_throttle: Arc::new(throttle::LoginThrottle::new(&config.baton)),
            identity: identity::Identity::new(
                config.clone(),
                store.clone(),
                tokens.clone(),
                fleet.clone(),
            ),
            config,
            store,
            policy: Arc::new(policy),
            tokens,
            fleet,
        })))
    }

    /// The server's keystone.conf.
    pub fn config(&self) -> &IdentityConfig {
        &self.config
    }

    /// `[DEFAULT] public_endpoint`, or the URL the client used to reach us.
    pub fn base_url(&self, headers: &HeaderMap) -> String {
        if let Some(p) = &self.config().default.public_endpoint {
            return p.trim_end_matches('/').to_string();
        }
        let host = headers
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
            .filter(|h| {
                h.chars()
                    .all(|c| c.is_ascii_alphanumeric() || ".-:[]".contains(c))
            })
            .unwrap_or("localhost");
        let scheme = if self.config().baton.tls.is_some() {
            "https"
        } else {
            "http"
        };
        format!("{scheme}://{host}")
    }

    /// Background work: follow the change feed (other nodes' writes), pick up revocations made
    /// by other nodes (also Keystone's) and rotated keys, and heartbeat into the fleet table.
    pub fn spawn_refreshers(&self) -> tokio::task::JoinHandle<()> {
        let state = self.clone();
        changes::ChangeFeed::spawn(
            self.tokens.clone(),
            Duration::from_millis(u64::from(self.config.baton.change_poll_interval_ms)),
        );
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                if let Err(e) = state.tokens.refresh_revocations().await {
                    tracing::warn!(error = %e, "could not refresh revocation events");
                }
                if state.config.fernet_tokens.key_distribution
                    == baton_config::KeyDistribution::Filesystem
                {
                    state.tokens.reload_keys();
                }
                // Shared keys (a newer version in the database) and the heartbeat.
                state.fleet.refresh(&state.tokens).await;
            }
        })
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut resp = self.render(false, None);
        resp.extensions_mut().insert(Arc::new(self));
        resp
    }
}

static REQUEST_ID: HeaderName = HeaderName::from_static("x-openstack-request-id");

/// Token headers whose values are marked sensitive in requests and responses, so that no
/// `Debug` print of a header map (hyper's, tower's or ours, at any log level) shows them.
const SENSITIVE_HEADERS: [HeaderName; 4] = [
    header::AUTHORIZATION,
    HeaderName::from_static("x-auth-token"),
    HeaderName::from_static("x-subject-token"),
    HeaderName::from_static("x-service-token"),
];

/// What every request goes through, in one layer (each axum middleware layer costs a boxed
/// future and a clone of the inner service per request): token headers marked sensitive,
/// Keystone's response headers ([`keystone_headers`]), the body deadline ([`body_deadline`])
/// and the header field limit ([`header_limits`]).
async fn every_request(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    mark_sensitive(req.headers_mut());
    let mut resp = keystone_headers(&state, req, next).await;
    mark_sensitive(resp.headers_mut());
    resp
}

fn mark_sensitive(headers: &mut HeaderMap) {
    for name in &SENSITIVE_HEADERS {
        if let header::Entry::Occupied(mut entry) = headers.entry(name) {
            for value in entry.iter_mut() {
                value.set_sensitive(true);
            }
        }
    }
}

/// Keystone's response conventions: a fresh request id (never the client's), `Vary:
/// X-Auth-Token`, `WWW-Authenticate` on every 401, and detailed errors only with
/// `insecure_debug`.
async fn keystone_headers(state: &AppState, req: Request, next: Next) -> Response {
    // Only the Host header is needed afterwards (for WWW-Authenticate); keep just that.
    let mut headers = HeaderMap::new();
    if let Some(host) = req.headers().get(header::HOST) {
        headers.insert(header::HOST, host.clone());
    }
    // The per-request debug line is the only use of these; don't pay for them otherwise.
    let described = tracing::enabled!(tracing::Level::DEBUG)
        .then(|| (req.method().clone(), req.uri().path().to_string()));
    let request_id = format!("req-{}", uuid::Uuid::new_v4());
    // Reads (validations above all) send no event that names who asked: they skip this.
    let writes = !matches!(*req.method(), Method::GET | Method::HEAD);
    let mut resp = if writes && state.tokens.audit.enabled() {
        // What the events of this request say about who asked (Keystone's audit initiator).
        let peer = req
            .extensions()
            .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
            .map(|c| c.0.ip().to_string());
        let agent = req
            .headers()
            .get(header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string();
        let sent = req.headers().get(&REQUEST_ID).and_then(|v| v.to_str().ok());
        let ctx = baton_audit::context::RequestContext::new(peer, agent, request_id.clone())
            .with_global_request_id(sent);
        baton_audit::context::scope(ctx, body_deadline(state, req, next)).await
    } else {
        body_deadline(state, req, next).await
    };
    if let Some(err) = resp.extensions().get::<Arc<ApiError>>().cloned() {
        if state.config().default.insecure_debug {
            resp = err.render(true, None);
        }
    }
    let h = resp.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&request_id) {
        h.insert(REQUEST_ID.clone(), v);
    }
    h.insert(header::VARY, HeaderValue::from_static("X-Auth-Token"));
    if resp.status() == StatusCode::UNAUTHORIZED {
        let uri = format!("Keystone uri=\"{}/v3\"", state.base_url(&headers));
        if let Ok(v) = HeaderValue::from_str(&uri) {
            resp.headers_mut().insert(header::WWW_AUTHENTICATE, v);
        }
    }
    if let Some((method, path)) = described {
        tracing::debug!(%method, %path, status = resp.status().as_u16(), request_id, "request");
    }
    resp
}

async fn not_found() -> ApiError {
    ApiError::NotFound("The resource could not be found.".into())
}

/// A method a route does not serve: Flask-RESTful's 405 body, as Keystone sends it.
async fn method_not_allowed() -> axum::response::Response {
    use axum::response::IntoResponse;
    (
        axum::http::StatusCode::METHOD_NOT_ALLOWED,
        axum::Json(
            serde_json::json!({"message": "The method is not allowed for the requested URL."}),
        ),
    )
        .into_response()
}

/// The identity API router.
pub fn router(state: AppState) -> Router {
    let body_limit = state.config().oslo_middleware.max_request_body_size as usize;
    Router::new()
        .route("/", get(api::discovery::versions))
        .route("/healthcheck", any(api::healthcheck::healthcheck))
        .route("/v3", get(api::discovery::v3))
        .route("/v3/", get(api::discovery::v3))
        .route(
            "/v3/auth/tokens",
            get(api::auth::validate)
                .head(api::auth::check)
                .post(api::auth::issue)
                .delete(api::auth::revoke),
        )
        .route("/v3/auth/catalog", get(api::auth::catalog))
        .route("/v3/auth/projects", get(api::auth::projects))
        .route("/v3/auth/domains", get(api::auth::domains))
        .route("/v3/OS-FEDERATION/projects", get(api::auth::projects))
        .route("/v3/OS-FEDERATION/domains", get(api::auth::domains))
        .route("/v3/auth/system", get(api::auth::system))
        .merge(api::admin::routes())
        .merge(api::ec2tokens::routes())
        .merge(api::oauth1::routes())
        .merge(api::fleet::routes())
        .merge(api::continuations::routes())
        .merge(api::token_pairs::routes())
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(body_limit))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            every_request,
        ))
        .with_state(state)
}

/// `[baton] body_timeout`: the request body must be in within this many seconds of the request
/// head, however it trickles (an idle timeout between reads would let a client send one byte a
/// second for ever). A request whose body missed it gets 408 and its connection is closed.
async fn body_deadline(state: &AppState, req: Request, next: Next) -> Response {
    let timeout = Duration::from_secs(u64::from(state.config().baton.body_timeout));
    let timed_out = Arc::new(AtomicBool::new(false));
    let flag = timed_out.clone();
    let req = req.map(|inner| {
        Body::new(DeadlineBody {
            inner,
            deadline: tokio::time::Instant::now() + timeout,
            sleep: None,
            timed_out: flag,
        })
    });
    let resp = header_limits(req, next).await;
    if !timed_out.load(Ordering::Relaxed) {
        return resp;
    }
    tracing::info!("request body not received within body_timeout: 408");
    let status = StatusCode::REQUEST_TIMEOUT;
    let body = baton_types::ErrorResponse::new(
        status.as_u16(),
        status.canonical_reason().unwrap_or(""),
        "The request body was not received in time.",
    );
    let mut resp = (status, axum::Json(body)).into_response();
    resp.headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
    resp
}

/// A request body that fails once the client makes the server wait past `deadline`. Data
/// already received is always handed on.
struct DeadlineBody {
    inner: Body,
    deadline: tokio::time::Instant,
    /// Created at the first wait; bodiless requests never arm a timer.
    sleep: Option<Pin<Box<tokio::time::Sleep>>>,
    timed_out: Arc<AtomicBool>,
}

#[derive(Debug, thiserror::Error)]
#[error("request body not received within body_timeout")]
struct BodyTimeout;

impl hyper::body::Body for DeadlineBody {
    type Data = Bytes;
    type Error = axum::BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::BoxError>>> {
        let this = self.get_mut();
        if this.timed_out.load(Ordering::Relaxed) {
            return Poll::Ready(Some(Err(Box::new(BodyTimeout))));
        }
        if let Poll::Ready(frame) = Pin::new(&mut this.inner).poll_frame(cx) {
            return Poll::Ready(frame.map(|f| f.map_err(Into::into)));
        }
        let deadline = this.deadline;
        let sleep = this
            .sleep
            .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
        if sleep.as_mut().poll(cx).is_pending() {
            return Poll::Pending;
        }
        this.timed_out.store(true, Ordering::Relaxed);
        Poll::Ready(Some(Err(Box::new(BodyTimeout))))
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// Largest request head (request line plus headers) accepted, in bytes. Tokens are a few hundred
/// bytes; anything near this is an attack or a mistake.
pub const MAX_HEADER_BYTES: usize = 32 * 1024;

/// Longest header field (`name: value`) accepted, in bytes: the limit Keystone's WSGI servers
/// apply (gunicorn's `limit_request_field_size` and Apache's `LimitRequestFieldSize`, 8190),
/// which answer 431 (gunicorn) or 400 (Apache). Keystone itself sets none. Hyper refuses more
/// than 100 header fields with 431, gunicorn's `limit_request_fields` and Apache's
/// `LimitRequestFields`.
pub const MAX_HEADER_FIELD_BYTES: usize = 8190;

/// 431 in Keystone's error shape for a header field over [`MAX_HEADER_FIELD_BYTES`] (gunicorn
/// answers an HTML page; the JSON body is Baton's, as for every error).
async fn header_limits(req: Request, next: Next) -> Response {
    let too_long = req
        .headers()
        .iter()
        .find(|(name, value)| name.as_str().len() + 2 + value.len() > MAX_HEADER_FIELD_BYTES);
    if let Some((name, value)) = too_long {
        tracing::info!(header = %name, bytes = value.len(), "header field too large: 431");
        return ApiError::HeaderFieldsTooLarge(format!(
            "Request header field {name} is larger than {MAX_HEADER_FIELD_BYTES} bytes."
        ))
        .into_response();
    }
    next.run(req).await
}

/// Serves the API on `listener` until the process ends, with `[baton]`'s client limits
/// (`max_connections`, `header_timeout`; `body_timeout` is in [`router`]) and, with
/// `tls_cert_file` / `tls_key_file`, over TLS (the pair reloaded when its files change).
pub async fn serve(state: AppState, listener: tokio::net::TcpListener) -> anyhow::Result<()> {
    let (limits, app) = start_serving(state, listener.local_addr())?;
    limits.accept(app, listener).await
}

/// What both ways of serving do before they accept: read the client limits, tell the fleet
/// this node's address and start the background refreshers on the caller's runtime.
fn start_serving(
    state: AppState,
    address: std::io::Result<std::net::SocketAddr>,
) -> anyhow::Result<(Limits, Router)> {
    let limits = Limits::new(&state)?;
    if let Ok(address) = address {
        state.fleet.set_address(address.to_string());
    }
    drop(state.spawn_refreshers());
    Ok((limits, router(state)))
}

/// [`serve`] with the connections served by `workers` threads, each with a single-threaded
/// runtime of its own accepting from the one socket (as `baton authproxy` does), so that a
/// request's work never hops between threads; the background work (revocation and key
/// refreshes, the change feed, notifications) stays on the caller's runtime. One
/// `max_connections` bound covers every thread. Returns when a worker stops, with its error.
pub async fn serve_workers(
    state: AppState,
    listener: std::net::TcpListener,
    workers: usize,
) -> anyhow::Result<()> {
    listener.set_nonblocking(true)?;
    let (limits, app) = start_serving(state, listener.local_addr())?;
    let limits = Arc::new(limits);
    baton_config::run_on_threads("baton-http", workers, || {
        let listener = listener.try_clone()?;
        let (limits, app) = (limits.clone(), app.clone());
        Ok(move || async move {
            let listener = tokio::net::TcpListener::from_std(listener)?;
            limits.accept(app, listener).await
        })
    })
    .await
}

/// `[baton]`'s client limits, shared by every accepting thread.
struct Limits {
    slots: Arc<tokio::sync::Semaphore>,
    max_connections: usize,
    header_timeout: Duration,
    tls: Option<tokio_rustls::TlsAcceptor>,
}

impl Limits {
    fn new(state: &AppState) -> anyhow::Result<Limits> {
        let limits = &state.config().baton;
        let max_connections = limits.max_connections as usize;
        Ok(Limits {
            slots: Arc::new(tokio::sync::Semaphore::new(max_connections)),
            max_connections,
            header_timeout: Duration::from_secs(u64::from(limits.header_timeout)),
            tls: limits.tls.as_ref().map(tls_acceptor).transpose()?,
        })
    }

    /// Accepts connections on `listener` for ever, each served on a task of this runtime.
    async fn accept(&self, app: Router, listener: tokio::net::TcpListener) -> anyhow::Result<()> {
        let (slots, max_connections, header_timeout) =
            (&self.slots, self.max_connections, self.header_timeout);
        // When every slot is taken the loop stops accepting: new connections wait in the
        // kernel's listen backlog (no descriptor of ours) and are served in order as soon as a
        // slot frees, which the timeouts guarantee. Accepting and closing them instead would
        // cost a descriptor and an accept per attempt under a flood, and turn a short burst
        // into errors.
        let mut warned_at: Option<tokio::time::Instant> = None;
        loop {
            let permit = match slots.clone().try_acquire_owned() {
                Ok(p) => p,
                Err(_) => {
                    if warned_at.is_none_or(|t| t.elapsed() >= Duration::from_secs(60)) {
                        warned_at = Some(tokio::time::Instant::now());
                        tracing::warn!(
                            max_connections,
                            "connection limit reached: new connections wait"
                        );
                    }
                    slots
                        .clone()
                        .acquire_owned()
                        .await
                        .map_err(|e| anyhow::anyhow!("connection slots: {e}"))?
                }
            };
            let (stream, peer) = loop {
                match listener.accept().await {
                    Ok((stream, peer)) => break (stream, peer),
                    Err(e) => {
                        // Out of file descriptors and the like: back off instead of spinning.
                        tracing::warn!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                }
            };
            let _ = stream.set_nodelay(true);
            // Handlers that count by source address (login throttling) read it from here.
            let app = app
                .clone()
                .layer(axum::Extension(axum::extract::ConnectInfo(peer)));
            let tls = self.tls.clone();
            tokio::spawn(async move {
                let _permit = permit;
                let Some(tls) = tls else {
                    return serve_http1(stream, app, header_timeout).await;
                };
                // The handshake counts against header_timeout, so a silent client cannot hold a
                // slot before its first byte of HTTP either.
                match tokio::time::timeout(header_timeout, tls.accept(stream)).await {
                    Ok(Ok(stream)) => serve_http1(stream, app, header_timeout).await,
                    Ok(Err(e)) => tracing::debug!(%peer, error = %e, "TLS handshake failed"),
                    Err(_) => {
                        tracing::debug!(%peer, "TLS handshake not done within header_timeout")
                    }
                }
            });
        }
    }
}

/// The acceptor of `[baton] tls_cert_file` / `tls_key_file`; a bad pair stops the start.
fn tls_acceptor(files: &baton_config::tls::TlsFiles) -> anyhow::Result<tokio_rustls::TlsAcceptor> {
    use baton_config::tls::{CertificateReloader, PairError};
    let reloader = CertificateReloader::new(files.clone(), "baton").map_err(|e| match e {
        PairError::Cert(m) => {
            anyhow::anyhow!("[baton] tls_cert_file = {}: {m}", files.cert_file.display())
        }
        PairError::Key(m) => {
            anyhow::anyhow!("[baton] tls_key_file = {}: {m}", files.key_file.display())
        }
    })?;
    let config = Arc::new(reloader)
        .server_config()
        .map_err(|e| anyhow::anyhow!("[baton] {e}"))?;
    Ok(tokio_rustls::TlsAcceptor::from(config))
}

/// One client connection: HTTP/1.1 with keep-alive and `header_timeout`, plain or over TLS.
async fn serve_http1<I>(io: I, app: Router, header_timeout: Duration)
where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
    use hyper_util::server::conn::auto::Builder;
    use hyper_util::service::TowerToHyperService;

    // HTTP/1.1 only, as Keystone behind Apache or uWSGI. The auto builder would first wait,
    // with no timeout, for enough bytes to tell an HTTP/2 preface from HTTP/1, so a connection
    // sending nothing (or the preface a byte at a time) would escape header_timeout; and
    // nothing here speaks HTTP/2 to an identity server.
    let mut builder = Builder::new(TokioExecutor::new()).http1_only();
    builder
        .http1()
        .timer(TokioTimer::new())
        .max_buf_size(MAX_HEADER_BYTES)
        .header_read_timeout(header_timeout);
    if let Err(e) = builder
        .serve_connection(TokioIo::new(io), TowerToHyperService::new(app))
        .await
    {
        tracing::debug!(error = %e, "connection ended with an error");
    }
}
