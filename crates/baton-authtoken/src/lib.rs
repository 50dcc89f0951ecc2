//! The receiving side of Baton: keystonemiddleware's `auth_token` for Rust services.
//!
//! This crate owns:
//!
//! * [`AuthTokenConfig`]: the `[keystone_authtoken]` section with keystonemiddleware's option
//!   names, meanings and defaults (13.x: `service_token_roles_required = true`), a few Baton
//!   options (`redis_url`, `cache_secret_key`, `expose_failure_reason`, ...), and a builder;
//! * [`Authenticator`]: the decision procedure, HTTP-free (`authenticate(&HeaderMap) ->
//!   Decision`), validating tokens against the identity endpoint found in its own service
//!   user's catalog (`GET /v3/auth/tokens[?allow_expired=1]` through a baton-client
//!   [`baton_client::Session`], which re-authenticates once on a 401 for its own token);
//! * [`AuthTokenLayer`] / [`AuthTokenService`]: the tower layer for axum and hyper services:
//!   strips spoofable identity headers, answers 401 (Keystone's body and `WWW-Authenticate:
//!   Keystone uri="..."`) or 503 ("The Keystone service is temporarily unavailable."), and
//!   otherwise passes an [`IdentityContext`] in the request extensions plus keystonemiddleware's
//!   `X-Identity-Status`, `X-Roles`, `X-Service-*`, ... headers;
//! * the validation cache: SHA-256-keyed, versioned, successes and refusals apart and per
//!   validation context, entries bounded by the token's own expiry, single flight, and an
//!   optional Redis cache whose entries are MACed with HMAC-SHA256 ([`cache`], `shared`), and
//!   keystonemiddleware's memcached token cache (`memcached_servers`), shared with it: same keys,
//!   same values, same `memcache_security_strategy` protection ([`memcache_crypt`]);
//! * [`access_rules`]: an application credential's access rules enforced against the request
//!   (`[keystone_authtoken] service_type`), skipped only for a valid service token with a
//!   service role (keystonemiddleware skips them for any `X-Service-Token`: bug 2129016);
//! * [`FailureReason`]: a machine-readable reason for every refusal, in the log line (tokens
//!   appear only as a 12-hex-digit SHA-256 prefix), in [`Metrics`] (Prometheus text) and, opt-in,
//!   in the `x-auth-failure-reason` response header;
//! * [`record`]: the audit record of a request (both identities, who acted for whom, the
//!   decision), logged for a service acting for a user and handed to an in-process subscriber
//!   ([`Authenticator::set_record_sink`]) for every request;
//! * [`OnwardCalls`]: sessions that call other services as the request's user, with the
//!   service token of `[service_user]` added ("Nova calls Cinder", [`onward`]); with a
//!   [`SentLog`] of what their requests carried ([`OnwardCredentials`], by token fingerprint);
//! * [`proxy`]: `baton authproxy`, the layer as a streaming reverse proxy in front of any HTTP
//!   service.
//!
//! The decision table (keystonemiddleware 13, `service_token_roles_required = true`):
//!
//! | service token | user token valid | user token expired (in window) | other user token |
//! |---|---|---|---|
//! | none | Confirmed | 401 `user_token_expired` | 401 `user_token_invalid` / `_missing` |
//! | valid, with a service role | Confirmed, `is_service_request()` | Confirmed (allow_expired) | 401 |
//! | valid, without one | 401 `service_token_missing_role` | 401 (both reasons) | 401 |
//! | expired / invalid | 401 `service_token_expired` / `_invalid` | 401 | 401 |
//!
//! A user token from an application credential with access rules is also refused (401
//! `access_rule_denied`) when no rule allows the request's method and path on this
//! `service_type`, unless the service token passed the role check; and (401
//! `access_rules_unenforceable`) when `service_type` is unset or not in its catalog.
//!
//! With `service_token_roles_required = false` a role-less service token is Confirmed but does
//! not allow expired user tokens; with `delay_auth_decision` every 401 above becomes a forwarded
//! request with `Invalid` statuses and the reasons in [`IdentityContext::failure_reasons`].

pub mod access_rules;
pub mod authenticator;
pub mod cache;
pub mod config;
pub mod context;
#[doc(hidden)]
pub mod fuzzing;
pub mod layer;
pub mod memcache_crypt;
mod memcached;
pub mod metrics;
pub mod onward;
pub mod proxy;
pub mod reason;
pub mod record;
mod shared;
mod token_memcache;
mod upstream;

pub use authenticator::{
    Authenticator, Decision, Rejection, FAILURE_REASON_HEADER, MAX_TOKEN_BYTES, STORAGE_TOKEN,
};
pub use cache::CACHE_SCHEMA;
pub use config::{
    AuthTokenConfig, AuthTokenConfigBuilder, Error, MemcacheConfig, SharedCacheConfig,
    DEFAULT_SECTION,
};
pub use context::{strip_identity_headers, v2_catalog, IdentityContext, TokenFacts, TokenInfo};
pub use layer::{AuthBody, AuthTokenLayer, AuthTokenService};
pub use memcache_crypt::Strategy as MemcacheSecurityStrategy;
pub use memcached::PoolOptions as MemcachePoolOptions;
pub use metrics::Metrics;
pub use onward::{OnwardCalls, OnwardCredentials, SentLog};
pub use proxy::{ProxyConfig, ProxyOptions, PROXY_SECTION};
pub use reason::{join_reasons, FailureReason, IdentityStatus};
pub use record::{RecordSink, RequestRecord};
