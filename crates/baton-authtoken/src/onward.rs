//! Calling other services as the user of the request being served ("Nova calls Cinder"): the
//! user's token from the [`IdentityContext`] plus, with `[service_user]
//! send_service_user_token = true`, the service user's own token in `X-Service-Token` — what
//! Nova's `service_auth.get_service_user_token_auth_plugin(context)` builds for every call to
//! Cinder, Neutron and Glance.
//!
//! It lives here rather than in `baton-client` because it reads this crate's context and the
//! client must not depend on the middleware (the middleware depends on the client).
//!
//! * [`OnwardCalls::from_ini`] reads `[service_user]` and checks it at start-up;
//!   [`OnwardCalls::with_http`] takes a host's own transport (timeouts, retries) and service
//!   user plugin (say, with another stale window) and checks nothing.
//! * [`OnwardCalls::session_for`] makes the session of one request's user;
//!   [`OnwardCalls::operation_session_for`] that of a long operation, with a continuation
//!   token where the identity server offers one;
//!   [`OnwardCalls::recorded_session_for`] also gives a [`SentLog`] that says what the
//!   session's requests carried, by token fingerprint, for a service's logs or the history of a
//!   long task (the reference compute service records it for every call it makes).
//!
//! ```no_run
//! # async fn f(ini: &baton_config::IniFile) -> Result<(), Box<dyn std::error::Error>> {
//! use axum::{extract::State, routing::post, Extension, Router};
//! use baton_authtoken::{IdentityContext, OnwardCalls};
//! use baton_client::{EndpointFilter, Interface};
//!
//! // Start-up: reads [service_user] and authenticates once (a bad section stops the start).
//! let onward = OnwardCalls::from_ini(ini, "service_user").await?;
//! let app: Router = Router::new()
//!     .route("/servers/attach", post(
//!         |State(onward): State<OnwardCalls>, Extension(ctx): Extension<IdentityContext>| async move {
//!             let cinder = onward.session_for(&ctx).map_err(|e| e.to_string())?;
//!             cinder
//!                 .post(EndpointFilter::new("volumev3").interface(Interface::Internal), "/attachments")
//!                 .json(&serde_json::json!({"attachment": {}}))
//!                 .send_json::<serde_json::Value>()
//!                 .await
//!                 .map(|v| v.to_string())
//!                 .map_err(|e| e.to_string())
//!         }))
//!     .with_state(onward);
//!     // .layer(AuthTokenLayer::new(...)) in front, which puts the IdentityContext there.
//! # let _ = app; Ok(()) }
//! ```

use std::fmt;
use std::sync::{Arc, Mutex};

use baton_client::{
    token_fingerprint, AccessInfo, AuthPlugin, AuthToken, BoxFuture, ContinuationAuth, Error,
    HttpClient, Refused, ServiceTokenAuth, ServiceUserConfig, Session, Url, UserToken,
};
use baton_config::IniFile;
use chrono::{DateTime, Utc};
use http::HeaderMap;

use crate::context::{IdentityContext, TokenInfo};

/// Makes sessions that act as a request's user, with the service token added when configured.
/// Cheap to clone; keep one per process (the service user's plugin caches its token and
/// refreshes it within 30 s of its expiry).
#[derive(Clone)]
pub struct OnwardCalls {
    base: Session,
    service: Option<Arc<dyn AuthPlugin>>,
}

impl fmt::Debug for OnwardCalls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OnwardCalls")
            .field("sends_service_token", &self.sends_service_token())
            .finish_non_exhaustive()
    }
}

impl OnwardCalls {
    /// Reads `section` (`service_user`) of `ini` and, when `send_service_user_token = true`,
    /// authenticates once as the service user and checks its `service` role: every problem is
    /// an error here, at start-up, rather than a 401 from a receiver later.
    pub async fn from_ini(ini: &IniFile, section: &str) -> Result<OnwardCalls, Error> {
        let Some(cfg) = ServiceUserConfig::from_ini(ini, section)? else {
            return OnwardCalls::new(None);
        };
        // The session that passed the check keeps the service user's token for onward calls.
        let base = cfg.session()?;
        cfg.validate_session_at_startup(&base, &[baton_client::SERVICE_ROLE])
            .await?;
        let service = Some(base.auth().clone());
        Ok(OnwardCalls { base, service })
    }

    /// Without start-up check; `None`: user token only (`send_service_user_token = false`).
    pub fn new(service_user: Option<&ServiceUserConfig>) -> Result<OnwardCalls, Error> {
        match service_user {
            Some(cfg) => {
                let base = cfg.session()?;
                let service = Some(base.auth().clone());
                Ok(OnwardCalls { base, service })
            }
            None => Ok(OnwardCalls {
                base: Session::new(placeholder())?,
                service: None,
            }),
        }
    }

    /// Without start-up check, over `http` (the host's timeouts and retries): `service` is the
    /// service user's plugin (a caching one, e.g. [`baton_client::Password`] with the stale
    /// window the host wants), or `None` for the user's token alone.
    pub fn with_http(http: HttpClient, service: Option<Arc<dyn AuthPlugin>>) -> OnwardCalls {
        OnwardCalls {
            base: Session::from_parts(http, placeholder()),
            service,
        }
    }

    /// From parts: `base` gives the transport and endpoint overrides, `service` the service
    /// user's plugin (or none).
    pub fn from_parts(base: Session, service: Option<Arc<dyn AuthPlugin>>) -> OnwardCalls {
        OnwardCalls { base, service }
    }

    /// Whether sessions add `X-Service-Token` (`send_service_user_token = true`).
    pub fn sends_service_token(&self) -> bool {
        self.service.is_some()
    }

    /// A session acting as the user of `ctx`: their token (sent even when it has expired —
    /// the service token is what lets the receiver accept it), their catalog for endpoint
    /// lookups, and `X-Service-Token` when configured. Fails when the middleware did not
    /// confirm a user token (possible only with `delay_auth_decision`).
    pub fn session_for(&self, ctx: &IdentityContext) -> Result<Session, Error> {
        Ok(self.base.with_auth(self.user_auth(ctx)?))
    }

    /// [`OnwardCalls::session_for`], and a log of what the session's requests carry: every
    /// time the session puts credentials on a request (a retry after a 401 included), the log
    /// keeps their fingerprints. Nothing is logged when they cannot be had (the service user
    /// failing to authenticate: the request then fails with that error).
    pub fn recorded_session_for(&self, ctx: &IdentityContext) -> Result<(Session, SentLog), Error> {
        let log = SentLog::default();
        let recording = Recording {
            inner: self.user_auth(ctx)?,
            expires_at: confirmed_user(ctx)?.expires_at,
            log: log.clone(),
        };
        Ok((self.base.with_auth(Arc::new(recording)), log))
    }

    /// A session for a long operation of the user of `ctx` that calls the services of
    /// `audience` (service types): with a service user, it carries a continuation token when
    /// the identity server offers them for that audience (docs/continuation.md), which lets
    /// the operation outlive the user's token without any `allow_expired_window`, and the
    /// service-token pair otherwise; without one, the user's token alone.
    ///
    /// Call it when the operation starts, while the user's token is valid: the continuation
    /// token is asked for here.
    pub async fn operation_session_for(
        &self,
        ctx: &IdentityContext,
        audience: &[&str],
    ) -> Result<Session, Error> {
        Ok(self
            .base
            .with_auth(self.operation_auth(ctx, audience).await?))
    }

    /// [`OnwardCalls::operation_session_for`] with a log of what its requests carry, as
    /// [`OnwardCalls::recorded_session_for`] keeps one (the user token's fingerprint is the
    /// continuation token's while one is used).
    pub async fn recorded_operation_session_for(
        &self,
        ctx: &IdentityContext,
        audience: &[&str],
    ) -> Result<(Session, SentLog), Error> {
        let log = SentLog::default();
        let recording = Recording {
            inner: self.operation_auth(ctx, audience).await?,
            expires_at: confirmed_user(ctx)?.expires_at,
            log: log.clone(),
        };
        Ok((self.base.with_auth(Arc::new(recording)), log))
    }

    /// The auth of a long operation of the user of `ctx`, its continuation token (if any)
    /// asked for now.
    async fn operation_auth(
        &self,
        ctx: &IdentityContext,
        audience: &[&str],
    ) -> Result<Arc<dyn AuthPlugin>, Error> {
        let info = confirmed_user(ctx)?;
        let user: Arc<dyn AuthPlugin> = Arc::new(UserToken::from_access(info.access().clone()));
        Ok(match &self.service {
            Some(service) => {
                let actor = self.base.with_auth(service.clone());
                let auth = Arc::new(ContinuationAuth::new(user, actor, audience));
                auth.prepare(self.base.http()).await?;
                auth
            }
            None => user,
        })
    }

    /// The auth of a session acting as the user of `ctx`.
    fn user_auth(&self, ctx: &IdentityContext) -> Result<Arc<dyn AuthPlugin>, Error> {
        let info = confirmed_user(ctx)?;
        let user: Arc<dyn AuthPlugin> = Arc::new(UserToken::from_access(info.access().clone()));
        Ok(match &self.service {
            Some(service) => Arc::new(ServiceTokenAuth::new(user, service.clone())),
            None => user,
        })
    }
}

/// The credentials one onward request carried, as SHA-256 fingerprints (the 12-hex-digit
/// prefixes the identity server logs too), never the tokens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OnwardCredentials {
    /// `X-Auth-Token`: the request's user token.
    pub user_token: String,
    /// When the user token expires: sent later, only a service token gets it accepted.
    pub user_token_expires_at: DateTime<Utc>,
    /// `X-Service-Token`, when the service user's token was added.
    pub service_token: Option<String>,
}

/// What the requests of a session from [`OnwardCalls::recorded_session_for`] carried. Cheap to
/// clone; the clones share the log.
#[derive(Debug, Clone, Default)]
pub struct SentLog(Arc<Mutex<Option<OnwardCredentials>>>);

impl SentLog {
    /// The credentials put on the session's latest request (the retry, after a 401 that made
    /// the session authenticate again); `None` before any.
    pub fn last(&self) -> Option<OnwardCredentials> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    fn record(&self, sent: OnwardCredentials) {
        *self.0.lock().unwrap_or_else(|e| e.into_inner()) = Some(sent);
    }
}

/// The auth of a recorded session: the user's (and service user's) auth, logging the
/// fingerprints of the headers it hands out.
struct Recording {
    inner: Arc<dyn AuthPlugin>,
    expires_at: DateTime<Utc>,
    log: SentLog,
}

impl fmt::Debug for Recording {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Recording")
            .field("inner", &self.inner)
            .finish_non_exhaustive()
    }
}

impl AuthPlugin for Recording {
    fn get_access<'a>(
        &'a self,
        http: &'a HttpClient,
    ) -> BoxFuture<'a, Result<Arc<AccessInfo>, Error>> {
        self.inner.get_access(http)
    }

    fn get_token<'a>(&'a self, http: &'a HttpClient) -> BoxFuture<'a, Result<AuthToken, Error>> {
        self.inner.get_token(http)
    }

    fn get_headers<'a>(&'a self, http: &'a HttpClient) -> BoxFuture<'a, Result<HeaderMap, Error>> {
        Box::pin(async move {
            let headers = self.inner.get_headers(http).await?;
            let fingerprint = |name: &str| {
                headers
                    .get(name)
                    .and_then(|v| v.to_str().ok())
                    .map(token_fingerprint)
            };
            self.log.record(OnwardCredentials {
                user_token: fingerprint(baton_types::headers::AUTH_TOKEN).unwrap_or_default(),
                user_token_expires_at: self.expires_at,
                service_token: fingerprint(baton_types::headers::SERVICE_TOKEN),
            });
            Ok(headers)
        })
    }

    fn invalidate(&self) -> bool {
        self.inner.invalidate()
    }

    fn invalidate_refused(&self, refused: &Refused) -> bool {
        self.inner.invalidate_refused(refused)
    }

    fn auth_url(&self) -> Option<&Url> {
        self.inner.auth_url()
    }
}

/// The plugin of the base session, never used: every session gets the user's auth.
fn placeholder() -> Arc<dyn AuthPlugin> {
    Arc::new(UserToken::new("".into()))
}

/// The request's confirmed user, or why there is none.
fn confirmed_user(ctx: &IdentityContext) -> Result<&TokenInfo, Error> {
    match (&ctx.user, ctx.user_token()) {
        (Some(info), Some(_)) => Ok(info),
        _ => Err(Error::NotAvailable(format!(
            "cannot call onward as the user: the request's user token was not confirmed (X-Identity-Status: {})",
            ctx.identity_status.as_str()
        ))),
    }
}
