//! The decision procedure of keystonemiddleware 13's auth_token, without HTTP: the request's
//! method, path and headers in, a [`Decision`] out.

use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use baton_client::{
    AccessInfo, AuthToken, Error as ClientError, PairMember, Session, SessionBuilder, Url,
    ValidateOptions,
};
use bytes::Bytes;
use chrono::{DateTime, Utc};
use http::header::{HeaderMap, HeaderName, HeaderValue, CONTENT_TYPE, WWW_AUTHENTICATE};
use http::{Method, Response, StatusCode};
use http_body_util::Full;

use crate::access_rules::{self, RequestScope};
use crate::cache::{pair_hash, token_hash, CacheKey, Ctx, Flights, LocalCache, Refusal};
use crate::config::{AuthTokenConfig, Error};
use crate::context::{IdentityContext, TokenInfo, Validated};
use crate::metrics::{inc, Metrics};
use crate::reason::{join_reasons, FailureReason, IdentityStatus};
use crate::record::RecordSink;
use crate::shared::SharedCache;
use crate::token_memcache::TokenMemcache;

/// Longest token accepted from a request; longer ones are refused without asking the identity
/// service (Keystone's Fernet tokens are under 300 bytes, JWS ones under 1 KiB).
pub const MAX_TOKEN_BYTES: usize = 8 * 1024;

/// The header keystonemiddleware falls back to when `X-Auth-Token` is absent.
pub const STORAGE_TOKEN: &str = "x-storage-token";

/// Response header carrying the refusal reasons (baton-client reads it).
pub const FAILURE_REASON_HEADER: &str = baton_client::AUTH_FAILURE_REASON_HEADER;

const MESSAGE_401: &str = "The request you have made requires authentication.";
const MESSAGE_503: &str = "The Keystone service is temporarily unavailable.";

/// What to do with a request.
#[derive(Debug, Clone)]
pub enum Decision {
    /// Pass it on with this context (confirmed, or unconfirmed under `delay_auth_decision`).
    Forward(Box<IdentityContext>),
    /// Answer it here.
    Reject(Rejection),
}

impl Decision {
    /// The context passed on, when the request goes through.
    pub fn context(&self) -> Option<&IdentityContext> {
        match self {
            Decision::Forward(c) => Some(c),
            Decision::Reject(_) => None,
        }
    }

    /// 200 for a request passed on, else the rejection's status.
    pub fn status(&self) -> StatusCode {
        match self {
            Decision::Forward(_) => StatusCode::OK,
            Decision::Reject(r) => r.status,
        }
    }
}

/// A refusal: 401 (a token failed) or 503 (the identity service could not be asked).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    /// 401 or 503.
    pub status: StatusCode,
    /// Service token first, then user token; a single identity reason for a 503.
    pub reasons: Vec<FailureReason>,
}

/// What one lookup found.
#[derive(Clone)]
enum Lookup {
    Valid(Arc<Validated>),
    Refused(Refusal),
    /// The identity service could not say; not cached.
    Failed(FailureReason, Arc<str>),
}

/// The identity service could not be asked about a token (not cached): the reason and the
/// error's text for the log.
struct Unavailable(FailureReason, Arc<str>);

/// What the service token check found (step 1 of [`Authenticator::authenticate`]).
#[derive(Default)]
struct ServiceVerdict {
    /// `None` when no service token came.
    status: Option<IdentityStatus>,
    info: Option<TokenInfo>,
    /// The token holds a role of `service_token_roles`: the user token may be expired
    /// within allow_expired's window.
    role_ok: bool,
    /// The service user of a valid token lacking such a role, for the log line.
    user_without_role: Option<String>,
    reason: Option<FailureReason>,
}

impl ServiceVerdict {
    fn invalid(reason: FailureReason) -> Self {
        ServiceVerdict {
            status: Some(IdentityStatus::Invalid),
            reason: Some(reason),
            ..ServiceVerdict::default()
        }
    }
}

/// A token header as read.
pub(crate) enum Presented {
    Absent,
    /// Not a plausible token (not visible ASCII, or too long): refused without a lookup.
    Malformed(String),
    Token(AuthToken),
}

/// The request's user token (`X-Auth-Token`, else `X-Storage-Token`), the header it was read
/// from, and its service token.
pub(crate) fn read_tokens(headers: &HeaderMap) -> (Presented, &'static str, Presented) {
    let service = read_token(headers, baton_types::headers::SERVICE_TOKEN);
    match read_token(headers, baton_types::headers::AUTH_TOKEN) {
        Presented::Absent => (read_token(headers, STORAGE_TOKEN), STORAGE_TOKEN, service),
        user => (user, baton_types::headers::AUTH_TOKEN, service),
    }
}

/// The first value of `name` (exactly `name`: no other spelling). Whatever else the request
/// carries for the token headers is dropped before forwarding
/// (`IdentityContext::restore_token_headers`).
pub(crate) fn read_token(headers: &HeaderMap, name: &str) -> Presented {
    let Some(v) = headers.get(name) else {
        return Presented::Absent;
    };
    match v.to_str() {
        Ok(s) if s.trim().is_empty() => Presented::Absent,
        Ok(s) if s.trim().len() <= MAX_TOKEN_BYTES => Presented::Token(AuthToken::new(s.trim())),
        // Only a refused token needs its fingerprint (for the log), not every request.
        _ => Presented::Malformed(baton_client::token_fingerprint(&String::from_utf8_lossy(
            v.as_bytes(),
        ))),
    }
}

/// The per-request record of a service acting for a user (a request confirmed with both
/// tokens): both identities, and for how long the user token had expired when it was accepted
/// because of the service token. At info level when it had expired (what security teams ask
/// about), at debug otherwise; target `baton_authtoken::audit`. Tokens appear only as
/// fingerprints.
fn service_request_record(
    context: &IdentityContext,
    method: &Method,
    path: &str,
    user_tok: &Presented,
    now: chrono::DateTime<Utc>,
) {
    let (Some(user), Some(service)) = (&context.user, &context.service) else {
        return;
    };
    if user.accepted_expired {
        tracing::info!(
            target: "baton_authtoken::audit",
            user_id = %user.user_id,
            project_id = user.project_id.as_deref().unwrap_or("-"),
            service_user_id = %service.user_id,
            service_user_name = %service.user_name,
            expired_for_seconds = (now - user.expires_at).num_seconds(),
            user_token = %fingerprint(user_tok),
            %method,
            path,
            "expired user token accepted for a service"
        );
    } else {
        tracing::debug!(
            target: "baton_authtoken::audit",
            user_id = %user.user_id,
            service_user_id = %service.user_id,
            %method,
            path,
            "service acting for a user"
        );
    }
}

/// A presented token's fingerprint, `None` when none came.
fn presented(p: &Presented) -> Option<String> {
    match p {
        Presented::Absent => None,
        other => Some(fingerprint(other)),
    }
}

fn fingerprint(p: &Presented) -> String {
    match p {
        Presented::Absent => "-".into(),
        Presented::Malformed(fp) => fp.clone(),
        Presented::Token(t) => t.fingerprint(),
    }
}

struct Inner {
    cfg: AuthTokenConfig,
    session: Session,
    local: LocalCache,
    flights: Flights<Lookup>,
    shared: Option<Arc<SharedCache>>,
    memcache: Option<Arc<TokenMemcache>>,
    metrics: Arc<Metrics>,
    warned_roleless: AtomicBool,
    www_authenticate: HeaderValue,
    /// Whether the identity server validates token pairs, and whether it has per-sender
    /// windows (set once it has answered).
    pairs_offered: OnceLock<Option<PairOffer>>,
    /// Who receives a [`crate::RequestRecord`] of every request, when someone does.
    records: OnceLock<RecordSink>,
    /// Until when (Unix milliseconds) not to ask again after the question went unanswered, so
    /// that an identity outage does not cost every request an extra failed call.
    pairs_retry_at: std::sync::atomic::AtomicU64,
}

/// How long an unanswered "are token pairs validated?" is not asked again.
const PAIRS_RETRY_MS: u64 = 30_000;

/// What the identity server said of token pairs.
#[derive(Debug, Clone, Copy)]
struct PairOffer {
    /// It has `[token_pairs]` rules: a user token's answer depends on the sender.
    rules: bool,
}

/// keystonemiddleware's auth_token decision procedure with Baton's cache; cheap to clone.
#[derive(Clone)]
pub struct Authenticator {
    inner: Arc<Inner>,
}

impl fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Authenticator")
            .field("config", &self.inner.cfg)
            .finish_non_exhaustive()
    }
}

impl Authenticator {
    /// Sets up the identity client and the caches. Nothing is contacted yet (see
    /// [`Authenticator::startup_check`]).
    pub fn new(cfg: AuthTokenConfig) -> Result<Authenticator, Error> {
        let session = SessionBuilder::default()
            .http_options(cfg.http.clone())
            .build(cfg.auth.clone())?;
        let metrics = Arc::new(Metrics::default());
        let shared = match &cfg.shared_cache {
            Some(s) if cfg.token_cache_time.is_some() => Some(Arc::new(
                SharedCache::new(s, metrics.clone()).map_err(Error::Invalid)?,
            )),
            Some(_) => {
                tracing::warn!("token_cache_time disables caching: redis_url is not used");
                None
            }
            None => None,
        };
        let memcache = match &cfg.memcache {
            Some(m) if cfg.token_cache_time.is_some() => Some(Arc::new(
                TokenMemcache::new(m, metrics.clone()).map_err(Error::Invalid)?,
            )),
            Some(_) => {
                tracing::warn!("token_cache_time disables caching: memcached_servers is not used");
                None
            }
            None => None,
        };
        let www_authenticate =
            HeaderValue::from_str(&format!("Keystone uri=\"{}\"", cfg.www_authenticate_uri))
                .map_err(|_| Error::Invalid("www_authenticate_uri is not a valid header".into()))?;
        if !cfg.service_token_roles_required {
            tracing::warn!(
                "service_token_roles_required is false: any valid token is accepted as a service token, with or without a role in service_token_roles ({}); set it to true (the default)",
                cfg.service_token_roles.join(", ")
            );
        }
        let local = LocalCache::new(
            cfg.token_cache_time.is_some(),
            cfg.negative_cache_time,
            cfg.cache_size,
        );
        Ok(Authenticator {
            inner: Arc::new(Inner {
                cfg,
                session,
                local,
                flights: Flights::new(),
                shared,
                memcache,
                metrics,
                warned_roleless: AtomicBool::new(false),
                www_authenticate,
                pairs_offered: OnceLock::new(),
                records: OnceLock::new(),
                pairs_retry_at: std::sync::atomic::AtomicU64::new(0),
            }),
        })
    }

    /// Hands a [`crate::RequestRecord`] of every request from now on to `sink` (an
    /// in-process audit subscriber, such as the demo's timelines); the first sink set stays.
    pub fn set_record_sink(&self, sink: RecordSink) {
        let _ = self.inner.records.set(sink);
    }

    /// The decision's record, to the sink when one is set.
    fn record(
        &self,
        context: &IdentityContext,
        request: (&Method, &str),
        (user_tok, service_tok): (&Presented, &Presented),
        now: DateTime<Utc>,
        refused: &[FailureReason],
    ) {
        if let Some(sink) = self.inner.records.get() {
            let tokens = (presented(user_tok), presented(service_tok));
            let request = (request.0.as_str(), request.1);
            sink(crate::record::of(context, request, tokens, now, refused));
        }
    }

    /// The options the middleware runs with.
    pub fn config(&self) -> &AuthTokenConfig {
        &self.inner.cfg
    }

    /// Counters of decisions, refusal reasons, cache hits and identity calls.
    pub fn metrics(&self) -> &Metrics {
        &self.inner.metrics
    }

    /// The `WWW-Authenticate` value of 401s: `Keystone uri="<www_authenticate_uri>"`.
    pub fn www_authenticate(&self) -> &HeaderValue {
        &self.inner.www_authenticate
    }

    /// The session the middleware validates with (authenticated as its own service user).
    pub fn session(&self) -> &Session {
        &self.inner.session
    }

    /// The shared-cache key of `token` (for operators and tests), if a shared cache is set.
    pub fn shared_cache_key(&self, token: &str, allow_expired: bool) -> Option<String> {
        let ctx = if allow_expired {
            Ctx::AllowExpired
        } else {
            Ctx::Plain
        };
        self.inner
            .shared
            .as_ref()
            .map(|s| s.key(ctx, &token_hash(token)))
    }

    /// The memcached key of `token` (keystonemiddleware's, for operators and tests), if
    /// `memcached_servers` is set.
    pub fn memcache_key(&self, token: &str) -> Option<String> {
        self.inner.memcache.as_ref().map(|m| m.key(token))
    }

    /// Authenticates as the service user and finds the identity endpoint in its catalog: call at
    /// start-up so that a wrong password or catalog stops the service rather than its first
    /// request. Warns when the service user holds neither `service` nor `admin` (Keystone's
    /// policy would refuse its validations).
    pub async fn startup_check(&self) -> Result<Url, ClientError> {
        let access = self.inner.session.get_access().await?;
        if !access.has_role("service") && !access.has_role("admin") {
            tracing::warn!(
                user = access.user_name(),
                roles = %access.role_names().join(","),
                "the auth_token service user has neither the service nor the admin role: the identity service will refuse its token validations (403)"
            );
        }
        let cfg = &self.inner.cfg;
        self.inner
            .session
            .identity_endpoint(cfg.interface, cfg.region_name.as_deref())
            .await
    }

    /// keystonemiddleware 13's procedure (the incoming identity headers are the caller's to strip;
    /// the layer does it first):
    ///
    /// 1. `X-Service-Token`: validated without allow_expired and checked for expiry. If it holds a
    ///    role of `service_token_roles` it is Confirmed; without one it is Invalid when
    ///    `service_token_roles_required`, else Confirmed (warned once).
    /// 2. The user token (`X-Auth-Token`, else `X-Storage-Token`): validated with allow_expired
    ///    exactly when the service token passed the role check; otherwise it must not be expired
    ///    (re-checked locally on cached data too). A token from an application credential with
    ///    access rules must then be allowed this `method` and `path` by them
    ///    ([`crate::access_rules`]; skipped when the service token passed the role check).
    /// 3. Confirmed user and no Invalid service token: forward. Otherwise 401, or forward with
    ///    Invalid statuses under `delay_auth_decision`. An identity service that cannot be asked
    ///    gives 503 (Invalid under `delay_auth_decision`).
    pub async fn authenticate(&self, method: &Method, path: &str, headers: &HeaderMap) -> Decision {
        let (user_tok, user_token_header, service_tok) = read_tokens(headers);
        let now = Utc::now();
        // Both tokens judged in one identity call, when the server offers it.
        let (pre_service, pre_user) = match self.pair(&user_tok, &service_tok).await {
            Some((s, u)) => (Some(s), Some(u)),
            None => (None, None),
        };

        // 1. The service token.
        let service = match self
            .check_service_token(&service_tok, now, pre_service)
            .await
        {
            Ok(verdict) => verdict,
            Err(Unavailable(reason, detail)) => {
                return self.unavailable(reason, &detail, &user_tok, &service_tok)
            }
        };
        let mut reasons: Vec<FailureReason> = service.reason.into_iter().collect();

        // 2. The user token.
        let allow_expired = service.role_ok;
        let scope = RequestScope {
            method: method.as_str(),
            path,
            service_type: self.inner.cfg.service_type.as_deref(),
            service_chain: service.role_ok,
        };
        let (user_info, user_reason) = match self
            .check_user_token(&user_tok, allow_expired, &scope, now, pre_user)
            .await
        {
            Ok(found) => found,
            Err(Unavailable(reason, detail)) => {
                return self.unavailable(reason, &detail, &user_tok, &service_tok)
            }
        };
        // Given once when both tokens could not be checked.
        if let Some(reason) = user_reason.filter(|r| !reasons.contains(r)) {
            reasons.push(reason);
        }
        let identity_status = if user_info.is_some() {
            IdentityStatus::Confirmed
        } else {
            IdentityStatus::Invalid
        };

        // 3. The decision.
        let ok = identity_status == IdentityStatus::Confirmed
            && service.status != Some(IdentityStatus::Invalid);
        let context = IdentityContext {
            identity_status,
            service_identity_status: service.status,
            user: user_info,
            service: service.info,
            service_role_check_passed: allow_expired,
            failure_reasons: reasons.clone(),
            user_token: match &user_tok {
                Presented::Token(t) => Some(t.clone()),
                _ => None,
            },
            service_token: match &service_tok {
                Presented::Token(t) => Some(t.clone()),
                _ => None,
            },
            user_token_header,
        };
        let tokens = (&user_tok, &service_tok);
        if ok {
            inc(&self.inner.metrics.confirmed);
            service_request_record(&context, method, path, &user_tok, now);
            self.record(&context, (method, path), tokens, now, &[]);
            return Decision::Forward(Box::new(context));
        }
        self.record(&context, (method, path), tokens, now, &reasons);
        self.not_authenticated(context, reasons, tokens, service.user_without_role)
    }

    /// Step 1 of [`Authenticator::authenticate`]: the `X-Service-Token`, never accepted past its
    /// expiry. `Err` when the identity service cannot be asked and the answer is a 503 now.
    async fn check_service_token(
        &self,
        service_tok: &Presented,
        now: DateTime<Utc>,
        pre: Option<Lookup>,
    ) -> Result<ServiceVerdict, Unavailable> {
        let cfg = &self.inner.cfg;
        let t = match service_tok {
            Presented::Absent => return Ok(ServiceVerdict::default()),
            Presented::Malformed(_) => {
                return Ok(ServiceVerdict::invalid(FailureReason::ServiceTokenInvalid))
            }
            Presented::Token(t) => t,
        };
        let found = match pre {
            Some(found) => found,
            None => self.lookup(t, Ctx::Plain).await,
        };
        Ok(match found {
            Lookup::Valid(access) if access.expires_at() <= now => {
                ServiceVerdict::invalid(FailureReason::ServiceTokenExpired)
            }
            Lookup::Valid(access) => {
                let role_ok = cfg.service_token_roles.iter().any(|r| access.has_role(r));
                if role_ok || !cfg.service_token_roles_required {
                    if !role_ok && !self.inner.warned_roleless.swap(true, Ordering::Relaxed) {
                        tracing::warn!(
                            service_user = access.user_id(),
                            "a valid token was sent as a service token without a role of service_token_roles; accepted because service_token_roles_required is false"
                        );
                    }
                    ServiceVerdict {
                        status: Some(IdentityStatus::Confirmed),
                        info: Some(TokenInfo::new(access, now)),
                        role_ok,
                        ..ServiceVerdict::default()
                    }
                } else {
                    ServiceVerdict {
                        user_without_role: Some(access.user_id().to_string()),
                        ..ServiceVerdict::invalid(FailureReason::ServiceTokenMissingRole)
                    }
                }
            }
            Lookup::Refused(Refusal::Expired) => {
                ServiceVerdict::invalid(FailureReason::ServiceTokenExpired)
            }
            Lookup::Refused(Refusal::Invalid) => {
                ServiceVerdict::invalid(FailureReason::ServiceTokenInvalid)
            }
            Lookup::Failed(reason, detail) => {
                if !cfg.delay_auth_decision {
                    return Err(Unavailable(reason, detail));
                }
                ServiceVerdict::invalid(reason)
            }
        })
    }

    /// Step 2 of [`Authenticator::authenticate`]: the user token, validated with allow_expired
    /// exactly when the service token passed the role check, and otherwise refused once expired
    /// (re-checked here on cached data too); then its access rules, if any, against the
    /// request. Gives the token's info or why it failed; `Err` when the identity service cannot
    /// be asked and the answer is a 503 now.
    async fn check_user_token(
        &self,
        user_tok: &Presented,
        allow_expired: bool,
        scope: &RequestScope<'_>,
        now: DateTime<Utc>,
        pre: Option<Lookup>,
    ) -> Result<(Option<TokenInfo>, Option<FailureReason>), Unavailable> {
        let t = match user_tok {
            Presented::Absent => return Ok((None, Some(FailureReason::UserTokenMissing))),
            Presented::Malformed(_) => return Ok((None, Some(FailureReason::UserTokenInvalid))),
            Presented::Token(t) => t,
        };
        let ctx = if allow_expired {
            Ctx::AllowExpired
        } else {
            Ctx::Plain
        };
        let found = match pre {
            Some(found) => found,
            None => self.lookup(t, ctx).await,
        };
        let reason = match found {
            Lookup::Valid(access) if !allow_expired && access.expires_at() <= now => {
                FailureReason::UserTokenExpired
            }
            Lookup::Valid(access) => match access_rules::check(&access, scope) {
                Ok(()) => return Ok((Some(TokenInfo::new(access, now)), None)),
                Err(reason) => reason,
            },
            Lookup::Refused(Refusal::Expired) => FailureReason::UserTokenExpired,
            Lookup::Refused(Refusal::Invalid) => FailureReason::UserTokenInvalid,
            Lookup::Failed(reason, detail) => {
                if !self.inner.cfg.delay_auth_decision {
                    return Err(Unavailable(reason, detail));
                }
                reason
            }
        };
        Ok((None, Some(reason)))
    }

    /// A request without a confirmed user, or with an invalid service token: logged and
    /// counted, then refused with 401, or forwarded unconfirmed under `delay_auth_decision`.
    fn not_authenticated(
        &self,
        context: IdentityContext,
        reasons: Vec<FailureReason>,
        (user_tok, service_tok): (&Presented, &Presented),
        service_user_without_role: Option<String>,
    ) -> Decision {
        let m = &self.inner.metrics;
        for r in &reasons {
            m.reason(*r);
        }
        let delayed = self.inner.cfg.delay_auth_decision;
        tracing::info!(
            target: "baton_authtoken",
            status = if delayed { "forwarded_unconfirmed" } else { "401" },
            reasons = %join_reasons(&reasons),
            user_token = %fingerprint(user_tok),
            service_token = %fingerprint(service_tok),
            user_id = context.user_id().unwrap_or("-"),
            service_user_id = context
                .service_user_id()
                .or(service_user_without_role.as_deref())
                .unwrap_or("-"),
            allow_expired = context.service_role_check_passed,
            "request not authenticated"
        );
        if delayed {
            inc(&m.forwarded_unconfirmed);
            Decision::Forward(Box::new(context))
        } else {
            inc(&m.rejected_401);
            Decision::Reject(Rejection {
                status: StatusCode::UNAUTHORIZED,
                reasons,
            })
        }
    }

    fn unavailable(
        &self,
        reason: FailureReason,
        detail: &str,
        user_tok: &Presented,
        service_tok: &Presented,
    ) -> Decision {
        let m = &self.inner.metrics;
        m.reason(reason);
        inc(&m.rejected_503);
        tracing::warn!(
            target: "baton_authtoken",
            status = "503",
            reasons = reason.as_str(),
            user_token = %fingerprint(user_tok),
            service_token = %fingerprint(service_tok),
            error = %detail,
            "cannot validate tokens: the identity service is unavailable"
        );
        Decision::Reject(Rejection {
            status: StatusCode::SERVICE_UNAVAILABLE,
            reasons: vec![reason],
        })
    }

    /// The response for a rejection: Keystone's error body, `WWW-Authenticate` on 401s and, with
    /// `expose_failure_reason`, the reasons.
    pub fn rejection_response(&self, r: &Rejection) -> Response<Full<Bytes>> {
        let message = if r.status == StatusCode::UNAUTHORIZED {
            MESSAGE_401
        } else {
            MESSAGE_503
        };
        // Keystone's member order: code, title, message.
        let body = format!(
            r#"{{"error":{{"code":{},"title":{},"message":{}}}}}"#,
            r.status.as_u16(),
            serde_json::Value::from(r.status.canonical_reason().unwrap_or("Error")),
            serde_json::Value::from(message),
        );
        let mut resp = Response::new(Full::new(Bytes::from(body)));
        *resp.status_mut() = r.status;
        let h = resp.headers_mut();
        h.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        if r.status == StatusCode::UNAUTHORIZED {
            h.insert(WWW_AUTHENTICATE, self.inner.www_authenticate.clone());
        }
        self.add_reasons(h, &r.reasons);
        resp
    }

    /// Adds the reason header (when `expose_failure_reason` and there are reasons).
    pub fn add_reasons(&self, headers: &mut HeaderMap, reasons: &[FailureReason]) {
        if self.inner.cfg.expose_failure_reason && !reasons.is_empty() {
            if let Ok(v) = HeaderValue::from_str(&join_reasons(reasons)) {
                headers.insert(HeaderName::from_static(FAILURE_REASON_HEADER), v);
            }
        }
    }

    /// The user token and the service token judged together (one `GET
    /// /v3/baton/token_pairs/validate` instead of two or three calls), as lookups of each,
    /// when both are present and the server offers it (`validate_token_pairs`); `None` means
    /// the usual one call per token. A service token known locally is not asked again, unless
    /// the server has per-sender windows and the user token has not been judged with it: then
    /// the user token's answer is kept under a key of both tokens. Otherwise answers are
    /// ordinary cache entries.
    async fn pair(&self, user: &Presented, service: &Presented) -> Option<(Lookup, Lookup)> {
        let (Presented::Token(u), Presented::Token(s)) = (user, service) else {
            return None;
        };
        let inner = &self.inner;
        if !inner.cfg.validate_token_pairs {
            return None;
        }
        let offer = self.pairs_offered().await?;
        let service_key = CacheKey {
            ctx: Ctx::Plain,
            hash: token_hash(s.expose()),
        };
        // Made only where it is used: a third SHA-256 on every cached request otherwise.
        let paired_key = || CacheKey {
            ctx: Ctx::Paired,
            hash: pair_hash(u.expose(), s.expose()),
        };
        if let Some(hit) = inner.local.get_positive(&service_key) {
            let role_ok = inner
                .cfg
                .service_token_roles
                .iter()
                .any(|r| hit.access.has_role(r));
            if !role_ok || !offer.rules {
                return None;
            }
            let key = paired_key();
            if let Some(user) = inner.local.get_positive(&key) {
                return Some((Lookup::Valid(hit.access), Lookup::Valid(user.access)));
            }
            if let Some(refusal) = inner.local.get_negative(&key) {
                return Some((Lookup::Valid(hit.access), Lookup::Refused(refusal)));
            }
        } else if inner.local.get_negative(&service_key).is_some() {
            return None;
        }
        inc(&inner.metrics.identity_pairs);
        let answer = match inner
            .session
            .validate_token_pair(
                Some(u),
                Some(s),
                &inner.cfg.service_token_roles,
                &self.validate_options(Ctx::Plain),
            )
            .await
        {
            Ok(a) => a,
            Err(e) => {
                tracing::debug!(error = %e, "token pair validation failed; one call per token");
                return None;
            }
        };
        let service = self.pair_member(answer.service, service_key, None);
        let user_key = |ctx| CacheKey {
            ctx,
            hash: token_hash(u.expose()),
        };
        let user = match (answer.allow_expired, offer.rules) {
            (true, true) => {
                let window = Duration::from_secs(answer.expired_window.unwrap_or(0));
                self.pair_member(answer.user, paired_key(), Some(window))
            }
            (true, false) => self.pair_member(answer.user, user_key(Ctx::AllowExpired), None),
            (false, _) => self.pair_member(answer.user, user_key(Ctx::Plain), None),
        };
        Some((service, user))
    }

    /// One member of a pair answer as a lookup, remembered under `key`: a success for as long
    /// as it may be used (at most `window` past expiry for a user token allowed to have
    /// expired), a refusal for `negative_cache_time`.
    fn pair_member(
        &self,
        member: Option<PairMember>,
        key: CacheKey,
        window: Option<Duration>,
    ) -> Lookup {
        let inner = &self.inner;
        let refusal = match member {
            Some(PairMember::Valid(access, _)) => {
                let access = Validated::new(Arc::new(*access));
                match window {
                    None => self.remember(key, &access),
                    Some(w) => {
                        let end =
                            access.expires_at() + chrono::Duration::from_std(w).unwrap_or_default();
                        let left = (end - Utc::now()).to_std().unwrap_or_default();
                        if let Some(ttl) = self.ttl(&access, Ctx::AllowExpired) {
                            inner.local.put_positive(key, access.clone(), ttl.min(left));
                        }
                    }
                }
                return Lookup::Valid(access);
            }
            Some(PairMember::Expired)
                if key.ctx != Ctx::Plain || inner.cfg.diagnose_expired_tokens =>
            {
                Refusal::Expired
            }
            _ => Refusal::Invalid,
        };
        inner
            .local
            .put_negative(key, refusal, inner.cfg.negative_cache_time);
        Lookup::Refused(refusal)
    }

    /// Whether the identity server validates token pairs: asked once (an unanswered question
    /// is asked again after [`PAIRS_RETRY_MS`]; until then, one call per token).
    async fn pairs_offered(&self) -> Option<PairOffer> {
        if let Some(known) = self.inner.pairs_offered.get() {
            return *known;
        }
        let now_ms = u64::try_from(Utc::now().timestamp_millis()).unwrap_or(0);
        if now_ms < self.inner.pairs_retry_at.load(Ordering::Relaxed) {
            return None;
        }
        match self
            .inner
            .session
            .token_pairs_offered(&self.validate_options(Ctx::Plain))
            .await
        {
            Ok(offer) => {
                let offer = offer.map(|rules| PairOffer { rules: rules > 0 });
                tracing::info!(
                    offered = offer.is_some(),
                    "identity server asked whether it validates token pairs in one call"
                );
                *self.inner.pairs_offered.get_or_init(|| offer)
            }
            Err(e) => {
                tracing::debug!(error = %e, "could not ask whether token pairs are validated");
                self.inner
                    .pairs_retry_at
                    .store(now_ms + PAIRS_RETRY_MS, Ordering::Relaxed);
                None
            }
        }
    }

    /// A validation: the local caches, then (single flight) the shared cache and the identity
    /// service.
    async fn lookup(&self, token: &AuthToken, ctx: Ctx) -> Lookup {
        let inner = &self.inner;
        let key = CacheKey {
            ctx,
            hash: token_hash(token.expose()),
        };
        if let Some(hit) = inner.local.get_positive(&key) {
            inc(&inner.metrics.local_hits);
            return Lookup::Valid(hit.access);
        }
        if let Some(refusal) = inner.local.get_negative(&key) {
            inc(&inner.metrics.local_negative_hits);
            return Lookup::Refused(refusal);
        }
        inc(&inner.metrics.local_misses);
        let (found, joined) = inner
            .flights
            .run(key, || self.lookup_remote(token, key))
            .await;
        if joined {
            inc(&inner.metrics.coalesced);
        }
        found
    }

    async fn lookup_remote(&self, token: &AuthToken, key: CacheKey) -> Lookup {
        let inner = &self.inner;
        // Another flight may have filled either cache between our miss and our start (it
        // records its result before leaving the flight table).
        if let Some(hit) = inner.local.get_positive(&key) {
            return Lookup::Valid(hit.access);
        }
        if let Some(refusal) = inner.local.get_negative(&key) {
            return Lookup::Refused(refusal);
        }
        if let Some(shared) = &inner.shared {
            if let Some((access, left)) = shared.get(key.ctx, &key.hash, token).await {
                let access = Validated::new(Arc::new(access));
                if let Some(ttl) = self.ttl(&access, key.ctx) {
                    inner.local.put_positive(key, access.clone(), ttl.min(left));
                    return Lookup::Valid(access);
                }
            }
        }
        if let Some(found) = self.memcache_hit(token, key).await {
            return found;
        }
        match self.call_identity(token, key.ctx).await {
            Ok(access) => {
                self.remember(key, &access);
                Lookup::Valid(access)
            }
            Err(ClientError::TokenNotFound { .. }) => {
                let refusal = if key.ctx == Ctx::Plain && inner.cfg.diagnose_expired_tokens {
                    self.diagnose(token, key.hash).await
                } else {
                    Refusal::Invalid
                };
                inner
                    .local
                    .put_negative(key, refusal, inner.cfg.negative_cache_time);
                Lookup::Refused(refusal)
            }
            Err(e) => {
                let reason = match e {
                    ClientError::Connection { .. }
                    | ClientError::Timeout { .. }
                    | ClientError::Transport { .. } => FailureReason::IdentityUnreachable,
                    _ => FailureReason::IdentityError,
                };
                Lookup::Failed(reason, Arc::from(e.to_string()))
            }
        }
    }

    /// A validation keystonemiddleware or another Baton process stored in memcached, if it is
    /// usable in `key`'s context. It is reused here for at most a tenth of `token_cache_time`:
    /// its age is unknown, so a revoked token stays usable at most 10 % longer than
    /// `token_cache_time`.
    async fn memcache_hit(&self, token: &AuthToken, key: CacheKey) -> Option<Lookup> {
        let access = Validated::new(Arc::new(self.inner.memcache.as_ref()?.get(token).await?));
        let ttl = self.ttl(&access, key.ctx)?;
        let reuse = self.inner.cfg.token_cache_time? / 10;
        self.inner
            .local
            .put_positive(key, access.clone(), ttl.min(reuse));
        Some(Lookup::Valid(access))
    }

    /// After a plain refusal: is the token merely expired? Asks with allow_expired (the answer is
    /// cached in the allow_expired context, where it belongs); never grants anything.
    async fn diagnose(&self, token: &AuthToken, hash: [u8; 32]) -> Refusal {
        let key = CacheKey {
            ctx: Ctx::AllowExpired,
            hash,
        };
        let now = Utc::now();
        if let Some(hit) = self.inner.local.get_positive(&key) {
            return if hit.access.expires_at() <= now {
                Refusal::Expired
            } else {
                Refusal::Invalid
            };
        }
        if self.inner.local.get_negative(&key).is_some() {
            return Refusal::Invalid;
        }
        match self
            .call_identity_with(token, Ctx::AllowExpired, true)
            .await
        {
            Ok(access) => {
                self.remember(key, &access);
                if access.expires_at() <= Utc::now() {
                    Refusal::Expired
                } else {
                    Refusal::Invalid
                }
            }
            Err(ClientError::TokenNotFound { .. }) => {
                self.inner.local.put_negative(
                    key,
                    Refusal::Invalid,
                    self.inner.cfg.negative_cache_time,
                );
                Refusal::Invalid
            }
            Err(_) => Refusal::Invalid,
        }
    }

    /// Caches a success locally and in the shared cache, for as long as it may be used.
    fn remember(&self, key: CacheKey, access: &Arc<Validated>) {
        if let Some(ttl) = self.ttl(access, key.ctx) {
            self.inner.local.put_positive(key, access.clone(), ttl);
            if let Some(shared) = &self.inner.shared {
                shared.put(key.ctx, &key.hash, access, ttl);
            }
            if let Some(memcache) = &self.inner.memcache {
                memcache.put(access, ttl);
            }
        }
    }

    /// `min(token_cache_time, expires_at [+ allow_expired_window] - now)`; `None` when caching
    /// is off or the entry would already be unusable.
    fn ttl(&self, access: &AccessInfo, ctx: Ctx) -> Option<Duration> {
        let cache_time = self.inner.cfg.token_cache_time?;
        let mut end = access.expires_at();
        if ctx == Ctx::AllowExpired {
            end += chrono::Duration::from_std(self.inner.cfg.allow_expired_window).ok()?;
        }
        let left = (end - Utc::now()).to_std().ok()?;
        (!left.is_zero()).then(|| left.min(cache_time))
    }

    fn validate_options(&self, ctx: Ctx) -> ValidateOptions {
        let cfg = &self.inner.cfg;
        ValidateOptions {
            allow_expired: ctx == Ctx::AllowExpired,
            include_catalog: cfg.include_service_catalog,
            interface: cfg.interface,
            region_name: cfg.region_name.clone(),
            // Every user token's rules are checked in `check_user_token`.
            enforces_access_rules: true,
            diagnosis: false,
        }
    }

    async fn call_identity(
        &self,
        token: &AuthToken,
        ctx: Ctx,
    ) -> Result<Arc<Validated>, ClientError> {
        self.call_identity_with(token, ctx, false).await
    }

    /// [`Authenticator::call_identity`]; `diagnosis`: the call only tells an expired token
    /// from an invalid one (the server then records no acceptance).
    async fn call_identity_with(
        &self,
        token: &AuthToken,
        ctx: Ctx,
        diagnosis: bool,
    ) -> Result<Arc<Validated>, ClientError> {
        let opts = ValidateOptions {
            diagnosis,
            ..self.validate_options(ctx)
        };
        let m = &self.inner.metrics;
        let result = self.inner.session.validate_token(token, &opts).await;
        match &result {
            Ok(_) => inc(&m.identity_ok),
            Err(ClientError::TokenNotFound { .. }) => inc(&m.identity_not_found),
            Err(e) => {
                inc(&m.identity_failed);
                tracing::debug!(error = %e, token = %token.fingerprint(), "token validation failed");
            }
        }
        result.map(|access| Validated::new(Arc::new(access)))
    }
}
