//! Calling other services as the user of the request being served ("Nova calls Cinder"): the
//! user's token from the [`IdentityContext`] plus, with `[service_user]
//! send_service_user_token = true`, the service user's own token in `X-Service-Token` — what
//! Nova's `service_auth.get_service_user_token_auth_plugin(context)` builds for every call to
//! Cinder, Neutron and Glance.
//!
//! It lives here rather than in `baton-client` because it reads this crate's context and the
//! client must not depend on the middleware (the middleware depends on the client).
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
use std::sync::Arc;

use baton_client::{AuthPlugin, Error, ServiceTokenAuth, ServiceUserConfig, Session, UserToken};
use baton_config::IniFile;

use crate::context::IdentityContext;

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
                // The placeholder plugin is never used: every session gets the user's auth.
                base: Session::new(Arc::new(UserToken::new("".into())))?,
                service: None,
            }),
        }
    }

    /// From parts: `base` gives the transport and endpoint overrides, `service` the service
    /// user's plugin (or none).
    pub fn from_parts(base: Session, service: Option<Arc<dyn AuthPlugin>>) -> OnwardCalls {
        OnwardCalls { base, service }
    }

    pub fn sends_service_token(&self) -> bool {
        self.service.is_some()
    }

    /// A session acting as the user of `ctx`: their token (sent even when it has expired —
    /// the service token is what lets the receiver accept it), their catalog for endpoint
    /// lookups, and `X-Service-Token` when configured. Fails when the middleware did not
    /// confirm a user token (possible only with `delay_auth_decision`).
    pub fn session_for(&self, ctx: &IdentityContext) -> Result<Session, Error> {
        let (Some(info), Some(_)) = (&ctx.user, ctx.user_token()) else {
            return Err(Error::NotAvailable(format!(
                "cannot call onward as the user: the request's user token was not confirmed (X-Identity-Status: {})",
                ctx.identity_status.as_str()
            )));
        };
        let user: Arc<dyn AuthPlugin> = Arc::new(UserToken::from_access(info.access().clone()));
        let auth: Arc<dyn AuthPlugin> = match &self.service {
            Some(service) => Arc::new(ServiceTokenAuth::new(user, service.clone())),
            None => user,
        };
        Ok(self.base.with_auth(auth))
    }
}
