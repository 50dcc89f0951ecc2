//! The identity HTTP API: Keystone v3 version discovery and the token API (issue, validate,
//! check, revoke, catalog and scopes), with Keystone's policy rules, status codes, error bodies
//! and headers. The router is built by [`router`] and can be driven without a socket; [`serve`]
//! runs it on a listener with Baton's connection limits and background refreshers.

pub mod api;
pub mod bootstrap;
pub mod directory;
pub mod error;
pub mod identity;
pub mod password;
pub mod policy;
pub mod revocations;
pub mod tokens;

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{header, HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use baton_config::IdentityConfig;
use baton_store::Store;
use baton_token::{KeyRepository, KeyRing, PayloadCodec, TokenFormatter};

pub use error::{ApiError, ApiResult};
pub use tokens::{token_fingerprint, TokenService, ValidatedToken};

/// Everything a request handler needs; cheap to clone.
#[derive(Clone)]
pub struct AppState {
    pub tokens: Arc<TokenService>,
    /// Keystone's default rules overlaid with `[oslo_policy] policy_file`.
    pub policy: Arc<policy::Policy>,
}

impl AppState {
    /// Builds the state from configuration: opens the database (which must hold Keystone's
    /// schema) and the Fernet key repository.
    pub async fn open(config: IdentityConfig) -> anyhow::Result<AppState> {
        let connection = config
            .database
            .connection
            .clone()
            .ok_or_else(|| anyhow::anyhow!("[database] connection is not set"))?;
        let policy = policy::Policy::load(
            &config.oslo_policy.policy_file,
            config.oslo_policy.policy_file_explicit,
        )?;
        let store = Store::connect(&connection).await?;
        if !store.schema_is_current().await? {
            anyhow::bail!(
                "database {} does not hold Keystone's schema at the revision Baton serves: run `baton manage db_sync`",
                store.redacted_url()
            );
        }
        let repo = KeyRepository::new(
            &config.fernet_tokens.key_repository,
            config.fernet_tokens.max_active_keys as usize,
        );
        let ring = KeyRing::load(repo)?;
        let codec = PayloadCodec::new(
            config.auth.methods.clone(),
            config.identity.default_domain_id.clone(),
        );
        let formatter = TokenFormatter::new(ring, codec);
        let tokens = TokenService::new(Arc::new(config), store, formatter)
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        Ok(AppState {
            tokens: Arc::new(tokens),
            policy: Arc::new(policy),
        })
    }

    pub fn config(&self) -> &IdentityConfig {
        &self.tokens.config
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
        format!("http://{host}")
    }

    /// Background work: pick up revocations made by other nodes and rotated keys.
    pub fn spawn_refreshers(&self) -> tokio::task::JoinHandle<()> {
        let state = self.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                if let Err(e) = state.tokens.refresh_revocations().await {
                    tracing::warn!(error = %e, "could not refresh revocation events");
                }
                state.tokens.reload_keys();
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

/// Keystone's response conventions: a fresh request id (never the client's), `Vary:
/// X-Auth-Token`, `WWW-Authenticate` on every 401, and detailed errors only with
/// `insecure_debug`.
async fn keystone_headers(State(state): State<AppState>, req: Request, next: Next) -> Response {
    // Only the Host header is needed afterwards (for WWW-Authenticate); keep just that.
    let mut headers = HeaderMap::new();
    if let Some(host) = req.headers().get(header::HOST) {
        headers.insert(header::HOST, host.clone());
    }
    // The per-request debug line is the only use of these; don't pay for them otherwise.
    let described = tracing::enabled!(tracing::Level::DEBUG)
        .then(|| (req.method().clone(), req.uri().path().to_string()));
    let request_id = format!("req-{}", uuid::Uuid::new_v4());
    let mut resp = next.run(req).await;
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

/// The identity API router.
pub fn router(state: AppState) -> Router {
    let body_limit = state.config().oslo_middleware.max_request_body_size as usize;
    Router::new()
        .route("/", get(api::discovery::versions))
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
        .route("/v3/auth/system", get(api::auth::system))
        .merge(api::admin::routes())
        .fallback(not_found)
        .layer(DefaultBodyLimit::max(body_limit))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            keystone_headers,
        ))
        .layer(
            tower_http::sensitive_headers::SetSensitiveHeadersLayer::new([
                header::AUTHORIZATION,
                HeaderName::from_static("x-auth-token"),
                HeaderName::from_static("x-subject-token"),
                HeaderName::from_static("x-service-token"),
            ]),
        )
        .with_state(state)
}

/// Largest request head (request line plus headers) accepted, in bytes. Tokens are a few hundred
/// bytes; anything near this is an attack or a mistake.
pub const MAX_HEADER_BYTES: usize = 32 * 1024;

/// Serves the API on `listener` until the process ends.
pub async fn serve(state: AppState, listener: tokio::net::TcpListener) -> anyhow::Result<()> {
    use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
    use hyper_util::server::conn::auto::Builder;
    use hyper_util::service::TowerToHyperService;

    let _refresher = state.spawn_refreshers();
    let app = router(state);
    loop {
        let (stream, _peer) = match listener.accept().await {
            Ok(c) => c,
            Err(e) => {
                // Out of file descriptors and the like: back off instead of spinning.
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let service = TowerToHyperService::new(app.clone());
        tokio::spawn(async move {
            let mut builder = Builder::new(TokioExecutor::new());
            builder
                .http1()
                .timer(TokioTimer::new())
                .max_buf_size(MAX_HEADER_BYTES)
                .header_read_timeout(Duration::from_secs(30));
            if let Err(e) = builder
                .serve_connection(TokioIo::new(stream), service)
                .await
            {
                tracing::debug!(error = %e, "connection ended with an error");
            }
        });
    }
}
