//! The sending side of Baton: how a service authenticates and calls other services, in the
//! manner of keystoneauth1.
//!
//! This crate owns:
//!
//! * [`AccessInfo`]: a token id with its parsed [`baton_types::TokenBody`], expiry checks and
//!   keystoneauth's catalog rules ([`AccessInfo::endpoint_for`]);
//! * the [`AuthPlugin`] trait and the Keystone v3 plugins [`Password`], [`Token`] (re-scope),
//!   [`ApplicationCredential`] and [`UserToken`] (a token as received, never re-authenticated);
//!   plugins cache their token and refresh it 30 s before expiry (see [`plugin`] for why not
//!   keystoneauth's 120 s);
//! * [`Session`]: authenticated requests to URLs or catalog services, endpoint overrides,
//!   re-authentication once on a 401, version discovery ([`discover`]), and
//!   [`Session::validate_token`] (`GET /v3/auth/tokens`, for the auth_token middleware);
//! * [`HttpClient`]: reqwest over rustls with connect/total timeouts, CA file, client
//!   certificate, `insecure`, bounded retries with exponential backoff on connection errors and
//!   503, and `x-openstack-request-id` logging;
//! * [`ServiceTokenAuth`]: the user's `X-Auth-Token` plus the service user's `X-Service-Token`,
//!   and errors that say which of the two a receiver refused ([`AUTH_FAILURE_REASON_HEADER`]);
//! * [`ServiceUserConfig`]: Nova's and Cinder's `[service_user]` section read from an oslo INI
//!   file ([`AuthConfig`]/[`SessionConfig`] for any section), with a start-up check;
//! * [`CloudLoader`] / [`CloudConfig`]: `clouds.yaml`, `secure.yaml` and `OS_*` variables read
//!   like openstacksdk and python-openstackclient ([`clouds`]).
//!
//! Tokens, passwords and secrets are typed ([`AuthToken`], [`SecretString`]); no `Debug` output,
//! log line or error message of this crate contains one. Where a token must be identified it is
//! shown as the first 12 hex digits of its SHA-256 ([`token_fingerprint`]), like the server does.
//!
//! Calling onward as the user of a request, with the service token added (a service behind
//! `baton-authtoken`'s layer gets all of this from `baton_authtoken::OnwardCalls`):
//!
//! ```no_run
//! # async fn f(ini: &baton_config::IniFile, user_token: baton_client::AuthToken,
//! #            body: baton_types::TokenBody) -> baton_client::Result<()> {
//! use std::sync::Arc;
//! use baton_client::{AuthPlugin, EndpointFilter, Interface, ServiceTokenAuth, ServiceUserConfig,
//!                    Session, UserToken};
//!
//! // At start-up: one service plugin per process (it caches the service token).
//! let service_user = ServiceUserConfig::from_ini(ini, "service_user")?;
//! let service_auth = match &service_user {
//!     Some(cfg) => {
//!         cfg.validate_at_startup().await?;
//!         Some(cfg.auth_plugin())
//!     }
//!     None => None,
//! };
//! let base = Session::new(Arc::new(UserToken::new(user_token.clone())))?;
//!
//! // Per request:
//! let user: Arc<dyn AuthPlugin> = Arc::new(UserToken::new(user_token).with_body(body));
//! let auth: Arc<dyn AuthPlugin> = match &service_auth {
//!     Some(service) => Arc::new(ServiceTokenAuth::new(user, service.clone())),
//!     None => user,
//! };
//! let session = base.with_auth(auth);
//! let volumes: serde_json::Value = session
//!     .get(EndpointFilter::new("volumev3").interface(Interface::Internal), "/volumes")
//!     .send_json()
//!     .await?;
//! # let _ = volumes; Ok(()) }
//! ```

pub mod access;
pub mod clouds;
pub mod config;
pub mod continuation;
pub mod discover;
pub mod error;
pub mod http;
pub mod plugin;
pub mod secret;
pub mod service_token;
pub mod session;
pub mod token_pair;

pub use access::{AccessInfo, Interface, STALE_TOKEN_DURATION};
pub use clouds::{CloudConfig, CloudLoader};
pub use config::{
    AuthConfig, AuthType, Credentials, ServiceUserConfig, SessionConfig, StartupCheck, SERVICE_ROLE,
};
pub use continuation::{ContinuationAuth, ContinuationOffer};
pub use error::{
    AuthFailureReason, Error, Refused, Result, WhichToken, AUTH_FAILURE_REASON_HEADER,
};
pub use http::{HttpClient, HttpOptions, HttpRequest, RetryPolicy};
pub use plugin::{
    AppCredRef, ApplicationCredential, AuthPlugin, BoxFuture, DomainRef, Password, ProjectRef,
    Scope, Token, UserRef, UserToken,
};
pub use reqwest::{Method, Url};
pub use secret::{token_fingerprint, AuthToken, SecretString};
pub use service_token::ServiceTokenAuth;
pub use session::{
    EndpointFilter, Session, SessionBuilder, SessionRequest, Target, ValidateOptions,
};
pub use token_pair::{PairMember, TokenPairAnswer};
