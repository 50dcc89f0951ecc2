//! Issuing, validating and revoking tokens with Keystone's rules.
//!
//! Validation is the hot path: a token that validated once is kept (keyed by a SHA-256 of its
//! canonical text, never the token itself) together with its rendered JSON body, and only its
//! expiry is rechecked on a hit. A revocation event from any node makes each cached token be
//! matched against the list on its next hit; a local write empties the cache, and a validation
//! that began before the write is not cached. A token new to the node reads its user, project
//! and assignments from the validation [`snapshot`] (emptied by the same writes), so a cold
//! validation usually runs no SQL. The change feed ends staleness of writes made by other
//! nodes, and the caches' TTL bounds everything else.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};
use zeroize::Zeroizing;

use baton_config::IdentityConfig;
use baton_store::{
    ApplicationCredential, FailedLogins, PasswordRecord, Project, RevocationEvent, Store, User,
};
use baton_token::{
    canonical_token_text, random_audit_id, ContinuationDelegation, Scope, TokenError,
    TokenFormatter, TokenPayload,
};
use baton_types::{token_fingerprint, IdName, ScopedProject, SystemScope, TokenBody, TokenUser};
use bytes::Bytes;
use chrono::{DateTime, NaiveDateTime, SubsecRound, Utc};
use sha2::{Digest, Sha256};

use crate::clock::Clock;
use crate::directory::{Directory, DirectoryCache};
use crate::error::{ApiError, ApiResult};
use crate::identity;
use crate::identity::users::{IGNORE_LOCKOUT_FAILURE_ATTEMPTS, IGNORE_PASSWORD_EXPIRY};
use crate::password::{self, Lockout};
use crate::revocations::{RevocationList, TokenValues, MAX_GAPS, RECHECK_EVERY};

mod continuation;
pub mod snapshot;
mod trust;

pub use continuation::ContinuationRequest;

pub use snapshot::Read;
use snapshot::{Snapshot, UserFacts};

/// Keystone's primary (non-delegated) authentication methods (its `delegation.py`): a token
/// with any other method came from a delegated credential (application credential, EC2,
/// OAuth1).
const PRIMARY_METHODS: &[&str] = &[
    "external", "kerberos", "mapped", "openid", "password", "saml2", "token", "totp", "x509",
];

/// A token that passed every check, with its bodies rendered once.
pub struct ValidatedToken {
    /// What `GET /v3/auth/tokens` shows: user, scope, effective roles, lifetime.
    pub body: TokenBody,
    /// What the token itself carries (user id, methods, scope ids, expiry, audit ids).
    pub payload: TokenPayload,
    /// `{"token": {...}}` without the catalog, rendered once.
    json_without_catalog: Bytes,
    /// The scope's catalog as a JSON array, shared with every token of the same project
    /// (`None` for a token that shows none: unscoped).
    catalog: Option<Bytes>,
    /// The revocation-list generation this token was last checked against; a cache hit
    /// re-checks only when events have arrived since.
    checked_generation: AtomicU64,
}

impl ValidatedToken {
    /// The token's user and scope as audit events name a user.
    pub fn audit_user(&self) -> baton_audit::cadf::User {
        baton_audit::cadf::User {
            id: self.body.user.id.clone(),
            name: self.body.user.name.clone(),
            project_id: self.body.project.as_ref().map(|p| p.id.clone()),
            domain_id: self.body.domain.as_ref().map(|d| d.id.clone()),
        }
    }

    /// Keystone's `is_delegated_method`: some method (or none at all) is not a primary one.
    pub fn from_delegated_method(&self) -> bool {
        let methods = &self.payload.methods;
        methods.is_empty()
            || methods
                .iter()
                .any(|m| !PRIMARY_METHODS.contains(&m.as_str()))
    }

    /// From a delegated method, or scoped to a trust: Keystone keeps such tokens away from
    /// credentials.
    pub fn is_delegated(&self) -> bool {
        self.payload.trust_id().is_some()
            || self.payload.actor_id().is_some()
            || self.from_delegated_method()
    }

    /// Whether a revocation event in `list` matches the token; a continuation token is also
    /// refused when one matches the user token its operation started from (revoked without
    /// cascade).
    fn revoked_in(&self, list: &RevocationList) -> bool {
        let mut values = self.revocation_values();
        if list.is_revoked(&values) {
            return true;
        }
        match &self.payload.scope {
            Scope::Continuation {
                subject_audit_id, ..
            } => {
                values.audit_id = subject_audit_id;
                list.is_revoked(&values)
            }
            _ => false,
        }
    }

    /// The token flattened the way revocation events are matched.
    fn revocation_values(&self) -> TokenValues<'_> {
        TokenValues {
            user_id: &self.body.user.id,
            identity_domain_id: &self.body.user.domain.id,
            project_id: self.payload.project_id(),
            assignment_domain_id: self
                .body
                .project
                .as_ref()
                .map(|p| p.domain.id.as_str())
                .or(self.body.domain.as_ref().map(|d| d.id.as_str())),
            role_ids: self
                .body
                .roles
                .iter()
                .flatten()
                .map(|r| r.id.as_str())
                .collect(),
            audit_id: self
                .payload
                .audit_ids
                .first()
                .map(String::as_str)
                .unwrap_or(""),
            audit_chain_id: self.payload.audit_ids.get(1).map(String::as_str),
            expires_at: whole_seconds(self.body.expires_at),
            issued_at: self.body.issued_at.naive_utc(),
            trust_id: self.payload.trust_id(),
            trustor_id: self.body.trust.as_ref().map(|t| t.trustor_user.id.as_str()),
            trustee_id: self.body.trust.as_ref().map(|t| t.trustee_user.id.as_str()),
            consumer_id: self.body.oauth1.as_ref().map(|o| o.consumer_id.as_str()),
            access_token_id: self
                .body
                .oauth1
                .as_ref()
                .map(|o| o.access_token_id.as_str()),
        }
    }

    /// The token response body; without the catalog for `?nocatalog`. With it, the shared
    /// catalog is spliced in as the body's last member: one copy, no serialisation.
    pub fn json(&self, include_catalog: bool) -> Bytes {
        let body = &self.json_without_catalog;
        match &self.catalog {
            Some(catalog) if include_catalog && body.ends_with(b"}}") => {
                const MEMBER: &[u8] = b",\"catalog\":";
                let head = &body[..body.len() - 2];
                let mut out = Vec::with_capacity(body.len() + MEMBER.len() + catalog.len());
                out.extend_from_slice(head);
                out.extend_from_slice(MEMBER);
                out.extend_from_slice(catalog);
                out.extend_from_slice(b"}}");
                Bytes::from(out)
            }
            _ => body.clone(),
        }
    }

    /// What this entry costs in the validation cache: the struct, each heap allocation as the
    /// allocator rounds it, its JSON (the shared catalog not counted) and the cache's own
    /// bookkeeping. The cache's byte bound counts this; `scripts/bench-identity.sh` checks it
    /// against the server's RSS.
    pub fn weight(&self) -> u32 {
        /// The cache's node, key, timer and deque entries and the `Arc` around the token.
        const CACHE_ENTRY: usize = 320;
        fn heap(len: usize) -> usize {
            if len == 0 {
                0
            } else {
                (len + 16).next_multiple_of(16)
            }
        }
        let s = |v: &str| heap(v.len());
        let list =
            |v: &[String]| heap(std::mem::size_of_val(v)) + v.iter().map(|x| s(x)).sum::<usize>();
        let names = |v: &IdName| s(&v.id) + s(&v.name);
        let (b, p) = (&self.body, &self.payload);
        let mut bytes = CACHE_ENTRY
            + std::mem::size_of::<ValidatedToken>()
            + heap(self.json_without_catalog.len())
            + heap(std::mem::size_of::<Bytes>());
        bytes += s(&b.user.id) + s(&b.user.name) + names(&b.user.domain);
        bytes += list(&b.methods) + list(&b.audit_ids);
        bytes += s(&p.user_id) + list(&p.methods) + list(&p.audit_ids);
        bytes += p.project_id().map_or(0, s) + p.trust_id().map_or(0, s);
        bytes += b
            .project
            .as_ref()
            .map_or(0, |x| s(&x.id) + s(&x.name) + names(&x.domain));
        bytes += b.domain.as_ref().map_or(0, names);
        if let Some(roles) = &b.roles {
            bytes += heap(std::mem::size_of_val(roles.as_slice()));
            bytes += roles.iter().map(names).sum::<usize>();
        }
        if b.application_credential.is_some() || b.trust.is_some() || b.continuation.is_some() {
            bytes += 1024;
        }
        u32::try_from(bytes).unwrap_or(u32::MAX)
    }

    /// The token's user.
    pub fn user_id(&self) -> &str {
        &self.body.user.id
    }

    /// Keystone's `_validate_token_access_rules`: a token of an application credential with
    /// access rules is refused to a validator that does not say (`OpenStack-Identity-Access-
    /// Rules` of at least 1.0) it enforces them.
    pub fn check_access_rules_support(&self, header: Option<&str>) -> ApiResult<()> {
        let has_rules = self
            .body
            .application_credential
            .as_ref()
            .is_some_and(|c| c.access_rules.as_ref().is_some_and(|r| !r.is_empty()));
        let supported = header
            .and_then(|h| h.trim().parse::<f64>().ok())
            .is_some_and(|v| v >= 1.0);
        if has_rules && !supported {
            return Err(ApiError::token_not_found(
                "application credential with access rules, and the validator does not enforce them",
            ));
        }
        Ok(())
    }

    /// Whether the token holds the role of that name on its scope.
    pub fn has_role(&self, name: &str) -> bool {
        self.body.role_names().any(|r| r == name)
    }
}

/// What a token may be scoped to in an issue request.
#[derive(Debug, Clone, PartialEq)]
pub enum RequestedScope {
    /// No `scope`: the user's default project if usable, else unscoped.
    Default,
    /// `"scope": "unscoped"`: no scope, whatever the default project.
    Unscoped,
    /// A project by id.
    ProjectId(String),
    /// A project by name, within a domain.
    ProjectName {
        /// The project's name.
        name: String,
        /// The domain that owns the project.
        domain: DomainRef,
    },
    /// A domain.
    Domain(DomainRef),
    /// The whole deployment (`{"system": {"all": true}}`).
    System,
    /// A trust by id (`{"OS-TRUST:trust": {"id": ...}}`): its project, for its trustee.
    Trust(String),
}

/// A domain named in a request, by id or by name.
#[derive(Debug, Clone, PartialEq)]
pub enum DomainRef {
    /// The domain's id.
    Id(String),
    /// The domain's name.
    Name(String),
}

/// The identity part of an issue request, already shape-checked.
#[derive(Clone)]
pub enum AuthMethod {
    /// `password`: a user and the user's password.
    Password {
        /// The user, by id or by name within a domain.
        user: UserRef,
        /// The password as sent (never logged; zeroed when dropped).
        password: Zeroizing<String>,
    },
    /// `token`: an existing token to rescope, whose user the new token keeps.
    Token {
        /// The token as sent.
        token: String,
    },
    /// `oauth1`: the request's `Authorization` header, signed with an access token (checked
    /// by `api::oauth1::authenticate`; it cannot be combined with other methods).
    OAuth1,
    /// `application_credential`: by id, or by name with its owner.
    ApplicationCredential {
        /// Which credential.
        cred: AppCredRef,
        /// Its secret as sent (never logged; zeroed when dropped).
        secret: Zeroizing<String>,
    },
}

/// An application credential named in an issue request.
#[derive(Clone)]
pub enum AppCredRef {
    /// By id.
    Id(String),
    /// By name, with its owner (names are unique per user).
    Name {
        /// The credential's name.
        name: String,
        /// Its owner.
        user: UserRef,
    },
}

/// A user named in a request, by id or by name within a domain.
#[derive(Clone)]
pub enum UserRef {
    /// The user's id.
    Id(String),
    /// The user's name, unique within its domain.
    Name {
        /// The login name.
        name: String,
        /// The domain that owns the user.
        domain: DomainRef,
    },
}

/// Keystone's token rules on the identity data: authenticates and issues (`POST
/// /v3/auth/tokens`), validates with a cache (`GET`/`HEAD`), revokes (`DELETE`), and finds a
/// user's effective roles on a project, domain or the system.
pub struct TokenService {
    /// The server's keystone.conf.
    pub config: Arc<IdentityConfig>,
    /// Now, for expiry, issue times and revocation stamps (tests move it).
    pub clock: Clock,
    /// The identity database.
    pub store: Store,
    formatter: TokenFormatter,
    validated: moka::sync::Cache<[u8; 32], Arc<ValidatedToken>>,
    revocations: RwLock<RevocationList>,
    /// Copy of the list's generation, read without the lock on every cache hit.
    revocation_generation: AtomicU64,
    /// Bumped by every local write that can change a validation result; a validation that
    /// began before a bump read data that may be stale, so its result is not cached.
    write_generation: AtomicU64,
    directory: DirectoryCache,
    /// Users, projects and assignments for cold validations.
    snapshot: Snapshot,
    dummy_hash: String,
    /// The shared change feed: announces this node's writes, follows the other nodes'.
    pub(crate) changes: crate::changes::ChangeFeed,
    /// Why the key repository last failed to reload, while it keeps failing: one log line
    /// per distinct failure, not one per second.
    key_reload_failure: Mutex<Option<String>>,
    /// The bounded slots every password and secret hash runs in.
    pub hashing: password::HashPool,
    /// Keystone's notifications (off unless `[oslo_messaging_notifications] driver` is set).
    pub audit: Arc<crate::audit::Audit>,
}

/// Why a token that decrypted is nevertheless refused. Typed so that callers decide on values
/// (issue retries a token born revoked); rendered at the edge as 401 when issuing and 404 when
/// validating, the text going to the log only (or the body with `insecure_debug`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// A revocation event matches it (logout, password change, role removal, ...).
    #[error("token has been revoked")]
    Revoked,
    /// Its user was deleted.
    #[error("user {0} not found")]
    UserNotFound(String),
    /// Its user is disabled.
    #[error("user {0} is disabled")]
    UserDisabled(String),
    /// The domain that owns its user is deleted or disabled.
    #[error("domain {domain} of user {user} is missing or disabled")]
    UserDomainUnusable {
        /// The token's user.
        user: String,
        /// The user's domain.
        domain: String,
    },
    /// Its project is deleted, disabled, or a domain.
    #[error("project {0} is missing or disabled")]
    ProjectUnusable(String),
    /// The domain of its project is disabled.
    #[error("domain of project {0} is disabled")]
    ProjectDomainDisabled(String),
    /// Its domain scope is deleted or disabled.
    #[error("domain {0} is missing or disabled")]
    DomainUnusable(String),
    /// A system scope other than `all`.
    #[error("unknown system scope {0:?}")]
    UnknownSystemScope(String),
    /// The user has no role assignment (direct, group, inherited) left on the scope.
    #[error("User {user} has no access to {target}")]
    NoRoles {
        /// The token's user.
        user: String,
        /// The scope, as "project ID", "domain ID" or "the system".
        target: String,
    },
    /// The token's application credential was deleted or has expired.
    #[error("application credential {0} not found or expired")]
    AppCredUnusable(String),
    /// The token's OAuth1 access token was deleted (with its consumer, or by its user).
    #[error("OAuth1 access token {0} not found")]
    AccessTokenUnusable(String),
    /// The token's trust was deleted, has expired or is used up.
    #[error("trust {0} not found, expired or used up")]
    TrustUnusable(String),
    /// A continuation token whose acting service user is gone, disabled or in a disabled
    /// domain.
    #[error("continuation actor {0} is missing or disabled")]
    ActorUnusable(String),
    /// Keystone's 403 for a trust token: not the trustee's, trustor disabled, a delegated role
    /// no longer held by the trustor, or a broken redelegation chain.
    #[error("trust token refused (trustee, trustor or delegated roles)")]
    TrustForbidden,
    /// A trust, federated, OAuth or application-credential token: it decrypts, but Baton
    /// cannot check what it claims.
    #[error("unsupported token payload version {version} ({kind}) in this deployment")]
    UnsupportedPayload {
        /// Keystone's payload version number.
        version: u8,
        /// What kind of token that version is.
        kind: &'static str,
    },
}

impl Refusal {
    /// The API error for a refusal met while issuing (401) or validating (404).
    pub fn into_api(self, issuing: bool) -> ApiError {
        match &self {
            Refusal::TrustForbidden => {
                tracing::info!(refusal = %self, "token refused");
                return trust::trust_forbidden();
            }
            // Keystone lets the trust's 404 through when validating.
            Refusal::TrustUnusable(id) if !issuing => {
                return ApiError::not_found("trust", id);
            }
            // And the access token's (an OAuth1 token whose delegation was deleted).
            Refusal::AccessTokenUnusable(_) if !issuing => {
                return crate::identity::oauth1::access_token_not_found();
            }
            _ => {}
        }
        if issuing {
            ApiError::unauthorized(self.to_string())
        } else {
            ApiError::token_not_found(self.to_string())
        }
    }
}

/// The user that the identity methods of an issue request authenticated, and what a token
/// method carries over to the new token.
struct Authenticated {
    user: User,
    /// Methods in the order given; a token method adds the source token's own.
    method_names: Vec<String>,
    /// A source token's expiry: a rescoped token never outlives the token it came from.
    expires_at: Option<f64>,
    /// The source token's chain id (its last audit id), which the new token inherits.
    parent_audit: Option<String>,
    /// The source token was scoped ([token] allow_rescope_scoped_token decides).
    source_scoped: bool,
    /// The application credential authenticated with, which fixes the scope.
    app_cred: Option<ApplicationCredential>,
}

/// Refuses methods of one request that authenticate different users.
fn same_user(prev: Option<&User>, next: &User) -> ApiResult<()> {
    match prev {
        Some(prev) if prev.id != next.id => {
            Err(ApiError::unauthorized("methods name different users"))
        }
        _ => Ok(()),
    }
}

/// The validation cache's key: every spelling of one token (with or without its base64
/// padding) is one entry, so an uncached spelling cannot bring back a stale result.
fn cache_key(token: &str) -> [u8; 32] {
    Sha256::digest(canonical_token_text(token).as_bytes()).into()
}

/// The answer of a check against the current data: the outer error is a failure to check
/// (database), the inner one why the token is refused.
type Checked<T> = ApiResult<Result<T, Refusal>>;

fn to_utc(secs: f64) -> DateTime<Utc> {
    let micros = (secs * 1_000_000.0).round() as i64;
    DateTime::from_timestamp_micros(micros).unwrap_or_default()
}

fn whole_seconds(t: DateTime<Utc>) -> NaiveDateTime {
    t.trunc_subsecs(0).naive_utc()
}

impl TokenService {
    /// The service over `store`, with the revocation list loaded; the dummy password hash
    /// (which makes unknown users cost a real verification) is computed here.
    pub async fn new(
        config: Arc<IdentityConfig>,
        store: Store,
        formatter: TokenFormatter,
        clock: Clock,
    ) -> ApiResult<Self> {
        let rounds = config.identity.password_hash_rounds;
        let dummy_hash = tokio::task::spawn_blocking(move || password::dummy_hash(rounds))
            .await
            .map_err(|e| ApiError::Internal(e.to_string()))?;
        let ttl = Duration::from_secs(u64::from(config.baton.validation_cache_ttl).max(1));
        let validated = moka::sync::Cache::builder()
            .max_capacity(config.baton.validation_cache_bytes)
            .weigher(|_: &[u8; 32], v: &Arc<ValidatedToken>| v.weight())
            .time_to_live(ttl)
            .build();
        let snapshot = Snapshot::new(config.baton.snapshot_cache_bytes, ttl);
        let return_all_endpoints = config.endpoint_filter.return_all_endpoints_if_no_filter;
        let notifier = baton_audit::Notifier::start(&config.notifications)
            .map_err(|e| ApiError::Internal(format!("notifications: {e}")))?;
        let svc = TokenService {
            audit: Arc::new(crate::audit::Audit::new(notifier, store.clone())),
            hashing: password::HashPool::new(&config.baton),
            config,
            clock,
            changes: crate::changes::ChangeFeed::new(store.clone()),
            key_reload_failure: Mutex::new(None),
            store,
            formatter,
            validated,
            revocations: RwLock::new(RevocationList::default()),
            revocation_generation: AtomicU64::new(0),
            write_generation: AtomicU64::new(0),
            directory: DirectoryCache::new(return_all_endpoints),
            snapshot,
            dummy_hash,
        };
        svc.refresh_revocations().await?;
        // Where the feed stands now; later moves drop the caches.
        if let Err(e) = svc.changes.poll(&svc).await {
            tracing::warn!(error = %e, "could not read the change feed");
        }
        Ok(svc)
    }

    /// The role and catalog snapshot (roles by id, implications).
    pub async fn directory_snapshot(&self) -> ApiResult<Arc<Directory>> {
        self.directory.get(&self.store).await
    }

    /// How this node follows the other nodes' writes (for the fleet view).
    pub fn change_feed_status(&self) -> crate::changes::FeedStatus {
        self.changes.status()
    }

    /// The Fernet token codec and its key repository.
    pub fn formatter(&self) -> &TokenFormatter {
        &self.formatter
    }

    /// Forgets every cached validation and directory snapshot (after a write). Validations
    /// under way keep their answer but do not cache it.
    pub fn invalidate_caches(&self) {
        self.write_generation.fetch_add(1, Ordering::AcqRel);
        self.validated.invalidate_all();
        self.directory.invalidate();
        self.snapshot.invalidate();
    }

    /// Bytes the validation snapshot holds (see [`snapshot`]).
    pub fn snapshot_bytes(&self) -> u64 {
        self.snapshot.weighted_size()
    }

    /// Caches a validation that began at write generation `began`, unless a write came since.
    fn cache_validated(&self, token: &str, began: u64, v: &Arc<ValidatedToken>) {
        if self.write_generation.load(Ordering::Acquire) == began {
            self.validated.insert(cache_key(token), v.clone());
        }
    }

    /// Revocation events must outlive every token they could match, including expired tokens
    /// revalidated through `allow_expired`.
    fn revocation_retention(&self) -> chrono::Duration {
        let t = &self.config.token;
        chrono::Duration::seconds(
            i64::from(t.expiration)
                + i64::from(t.allow_expired_window)
                + i64::from(self.config.revoke.expiration_buffer),
        )
    }

    /// Loads revocation events written since the last look (by any node), including those that
    /// committed after events with higher ids were read. Every [`RECHECK_EVERY`] it also
    /// prunes by time (the database and this node's list, whoever wrote the events) and reads
    /// again the ids of the last two intervals, catching writers slower than the gap patience; it
    /// never reads the whole table again, so its cost follows the rate of events, not their
    /// number. Cached validations are not dropped: each is re-checked against the list on its
    /// next hit. Returns how many events were new (or read, on the start-up load).
    pub async fn refresh_revocations(&self) -> ApiResult<usize> {
        self.poll_revocations(false).await
    }

    /// A recheck now, whenever the last one was: prunes by time and reads the recent ids
    /// again (what [`Self::refresh_revocations`] does every [`RECHECK_EVERY`]).
    pub async fn recheck_revocations(&self) -> ApiResult<usize> {
        self.poll_revocations(true).await
    }

    /// How many entries this node's revocation list holds (see [`RevocationList::len`]).
    pub fn revocation_entries(&self) -> usize {
        self.revocations
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .len()
    }

    async fn poll_revocations(&self, force_recheck: bool) -> ApiResult<usize> {
        let now = Instant::now();
        let state = {
            let list = self.revocations.read().unwrap_or_else(|e| e.into_inner());
            list.rechecked_at.map(|rechecked_at| {
                let recheck =
                    force_recheck || now.saturating_duration_since(rechecked_at) >= RECHECK_EVERY;
                (list.last_id, list.gaps(), list.recheck_floor(), recheck)
            })
        };
        let Some((after, mut also, floor, recheck)) = state else {
            return self.load_revocations(now).await;
        };
        let cutoff = self.clock.now().naive_utc() - self.revocation_retention();
        if recheck {
            // Off every request's path, and rare.
            if let Err(e) = self.store.prune_revocation_events(cutoff).await {
                tracing::warn!(error = %e, "could not prune revocation events");
            }
            let ids = self.store.revocation_event_ids(floor).await?;
            let list = self.revocations.read().unwrap_or_else(|e| e.into_inner());
            // Bounded like the gaps: a query takes at most so many ids.
            let late = ids
                .into_iter()
                .filter(|id| list.is_late(*id))
                .take(MAX_GAPS);
            also.extend(late);
            drop(list);
        }
        let events = self.store.list_revocation_events(after, &also).await?;
        if events.is_empty() && also.is_empty() && !recheck {
            return Ok(0);
        }
        let mut list = self.revocations.write().unwrap_or_else(|e| e.into_inner());
        let n = list.add_polled(events, now);
        if recheck {
            list.prune(cutoff);
            list.rechecked(after, now);
        }
        if n > 0 {
            self.revocation_generation
                .store(list.generation, Ordering::Release);
        }
        Ok(n)
    }

    /// The start-up load: every stored event, streamed (never the whole table in memory) into
    /// a list that then replaces the current one.
    async fn load_revocations(&self, now: Instant) -> ApiResult<usize> {
        let cutoff = self.clock.now().naive_utc() - self.revocation_retention();
        let began = Instant::now();
        let mut fresh = RevocationList::default();
        let n = self
            .store
            .for_each_revocation_event(|ev| fresh.add_loaded(ev))
            .await?;
        fresh.prune(cutoff);
        fresh.rechecked(fresh.last_id, now);
        tracing::info!(
            events = n,
            entries = fresh.len(),
            seconds = began.elapsed().as_secs_f64(),
            "revocation events loaded"
        );
        let mut list = self.revocations.write().unwrap_or_else(|e| e.into_inner());
        // Strictly newer, so every cached validation is matched against the new list.
        fresh.generation += list.generation + 1;
        *list = fresh;
        self.revocation_generation
            .store(list.generation, Ordering::Release);
        Ok(usize::try_from(n).unwrap_or(usize::MAX))
    }

    /// Picks up a rotated key repository (another process ran `fernet_rotate`). Cached
    /// validations are dropped, since a token whose key was rotated out must stop validating.
    /// A repository caught mid-change (a half-written or vanished key file, a vanished
    /// directory) keeps the loaded keys in use; each distinct failure is logged once.
    pub fn reload_keys(&self) {
        let outcome = self.formatter.ring().reload_if_changed();
        let mut failure = self
            .key_reload_failure
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        match outcome {
            Ok(true) => {
                self.write_generation.fetch_add(1, Ordering::AcqRel);
                self.validated.invalidate_all();
                tracing::info!("Fernet key repository changed; keys reloaded");
                *failure = None;
            }
            Ok(false) => {
                // The directory is as it was when last loaded: whatever failed is undone.
                if failure.take().is_some() {
                    tracing::info!(
                        "Fernet key repository usable again; the loaded keys are current"
                    );
                }
            }
            Err(e) => {
                let text = e.to_string();
                if failure.as_deref() != Some(text.as_str()) {
                    tracing::error!(error = %text, "Fernet key repository reload failed; keeping the loaded keys");
                    *failure = Some(text);
                }
            }
        }
    }

    /// Why the key repository cannot be reloaded now (the loaded keys stay in use), if it
    /// cannot.
    pub fn key_reload_failure(&self) -> Option<String> {
        self.key_reload_failure
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Puts a key set loaded from the shared database in use (`key_distribution =
    /// database`); cached validations go, as after a reload.
    pub fn install_keys(&self, keys: baton_token::KeySet) {
        self.formatter.ring().install(keys);
        self.write_generation.fetch_add(1, Ordering::AcqRel);
        self.validated.invalidate_all();
    }

    // ----- validation -------------------------------------------------------------------

    /// Validates a token as `GET /v3/auth/tokens` does; with `allow_expired` the expiry is
    /// stretched by `[token] allow_expired_window` while every other check still applies.
    pub async fn validate(
        &self,
        token: &str,
        allow_expired: bool,
    ) -> ApiResult<Arc<ValidatedToken>> {
        let validated = self.validate_ignoring_expiry(token).await?;
        self.check_expiry(&validated, allow_expired)?;
        Ok(validated)
    }

    /// Every check of [`TokenService::validate`] but the expiry, which the caller judges (see
    /// [`TokenService::expired_beyond`]).
    pub async fn validate_ignoring_expiry(&self, token: &str) -> ApiResult<Arc<ValidatedToken>> {
        self.hashing.note_validation();
        let key = cache_key(token);
        let validated = match self.validated.get(&key) {
            Some(v) => {
                if v.checked_generation.load(Ordering::Acquire)
                    < self.revocation_generation.load(Ordering::Acquire)
                {
                    let list = self.revocations.read().unwrap_or_else(|e| e.into_inner());
                    if v.revoked_in(&list) {
                        drop(list);
                        self.validated.invalidate(&key);
                        return Err(Refusal::Revoked.into_api(false));
                    }
                    v.checked_generation
                        .store(list.generation, Ordering::Release);
                }
                // A credential deleted by another node (or by Keystone on the shared database)
                // ends its tokens at once: its row is looked up on every use, as Keystone does.
                if let Some(id) = v.payload.app_cred_id() {
                    let usable = self
                        .store
                        .get_application_credential(id)
                        .await?
                        .is_some_and(|c| !self.app_cred_expired(&c));
                    if !usable {
                        self.validated.invalidate(&key);
                        return Err(Refusal::AppCredUnusable(id.to_string()).into_api(false));
                    }
                }
                if let Some(id) = v.payload.trust_id() {
                    if !self.trust_still_usable(id).await? {
                        self.validated.invalidate(&key);
                        return Err(Refusal::TrustUnusable(id.to_string()).into_api(false));
                    }
                }
                v
            }
            None => {
                let began = self.write_generation.load(Ordering::Acquire);
                let v = Arc::new(self.validate_uncached(token).await?);
                self.cache_validated(token, began, &v);
                v
            }
        };
        Ok(validated)
    }

    /// Whether `v` expired more than `window` seconds ago (0: whether it expired at all).
    pub fn expired_beyond(&self, v: &ValidatedToken, window: u32) -> bool {
        self.clock.now() >= v.body.expires_at + chrono::Duration::seconds(i64::from(window))
    }

    fn check_expiry(&self, v: &ValidatedToken, allow_expired: bool) -> ApiResult<()> {
        let window = if allow_expired {
            self.config.token.allow_expired_window
        } else {
            0
        };
        if self.expired_beyond(v, window) {
            return Err(ApiError::token_not_found(if allow_expired {
                "token expired beyond allow_expired_window"
            } else {
                "token expired"
            }));
        }
        Ok(())
    }

    async fn validate_uncached(&self, token: &str) -> ApiResult<ValidatedToken> {
        let (payload, issued_at) = match self.formatter.validate_token(token) {
            Ok(v) => v,
            Err(TokenError::Undecryptable) => {
                // Perhaps another node rotated keys; look once, then decide.
                self.reload_keys();
                self.formatter
                    .validate_token(token)
                    .map_err(|e| ApiError::token_not_found(e.to_string()))?
            }
            Err(e) => return Err(ApiError::token_not_found(e.to_string())),
        };
        let issued_at = DateTime::from_timestamp(issued_at as i64, 0).unwrap_or_default();
        self.build_validated(Read::Snapshot, payload, issued_at)
            .await?
            .map_err(|r| r.into_api(false))
    }

    /// Checks the payload against the current data (user enabled, scope usable, roles present,
    /// not revoked) and renders the token. The outer error is a failure to check (database);
    /// the inner one says why the token is refused.
    async fn build_validated(
        &self,
        read: Read,
        payload: TokenPayload,
        issued_at: DateTime<Utc>,
    ) -> Checked<ValidatedToken> {
        if let Some(refusal) = unsupported_scope(&payload.scope) {
            return Ok(Err(refusal));
        }
        let (user_facts, user_domain) = match self.token_user(read, &payload.user_id).await? {
            Ok(found) => found,
            Err(refusal) => return Ok(Err(refusal)),
        };
        let user = &user_facts.user;
        let app_cred = match self.token_app_cred(&payload, user).await? {
            Ok(found) => found,
            Err(refusal) => return Ok(Err(refusal)),
        };
        let dir = self.directory.get(&self.store).await?;
        let mut body = TokenBody {
            methods: payload.methods.clone(),
            user: TokenUser {
                domain: IdName {
                    id: user_domain.id.clone(),
                    name: user_domain.name.clone(),
                },
                id: user.id.clone(),
                name: user.name.clone(),
                password_expires_at: user_facts.password_expires_at,
            },
            audit_ids: payload.audit_ids.clone(),
            expires_at: to_utc(payload.expires_at),
            issued_at,
            project: None,
            is_domain: None,
            domain: None,
            system: None,
            roles: None,
            is_admin_project: None,
            catalog: None,
            application_credential: None,
            trust: None,
            oauth1: None,
            continuation: None,
            service_providers: dir.service_providers(),
        };
        let mut scoped = self
            .fill_scope(read, &dir, &user.id, &payload.scope, &mut body)
            .await?;
        if let (Some(cred), Ok(Some((roles, _)))) = (&app_cred, &mut scoped) {
            // Keystone: the credential's roles the user still has there, in the credential's
            // order.
            *roles = restrict_to_app_cred(cred, roles);
            body.application_credential = Some(app_cred_body(cred));
        }
        match scoped {
            Err(refusal) => return Ok(Err(refusal)),
            Ok(None) => {}
            // A scoped token carries the scope's effective roles, and needs at least one.
            Ok(Some((roles, _))) if !roles.is_empty() => {
                body.roles = Some(
                    roles
                        .into_iter()
                        .map(|r| IdName {
                            id: r.id,
                            name: r.name,
                        })
                        .collect(),
                );
            }
            Ok(Some((_, target))) => {
                return Ok(Err(Refusal::NoRoles {
                    user: user.id.clone(),
                    target,
                }))
            }
        }
        let (without, catalog) = render_body(&body, &dir)?;
        let validated = ValidatedToken {
            body,
            payload,
            json_without_catalog: without,
            catalog,
            checked_generation: AtomicU64::new(0),
        };
        Ok(self.unless_revoked(validated))
    }

    /// The application credential of an application-credential token: it must still exist, be
    /// the user's, and not have expired.
    async fn token_app_cred(
        &self,
        payload: &TokenPayload,
        user: &User,
    ) -> Checked<Option<ApplicationCredential>> {
        let Some(id) = payload.app_cred_id() else {
            return Ok(Ok(None));
        };
        Ok(match self.store.get_application_credential(id).await? {
            Some(c) if c.user_id == user.id && !self.app_cred_expired(&c) => Ok(Some(c)),
            _ => Err(Refusal::AppCredUnusable(id.to_string())),
        })
    }

    /// The token's user (with its password expiry) and the user's domain, both enabled.
    async fn token_user(
        &self,
        read: Read,
        user_id: &str,
    ) -> Checked<(Arc<UserFacts>, Arc<Project>)> {
        let Some(facts) = self.user_facts(read, user_id).await? else {
            return Ok(Err(Refusal::UserNotFound(user_id.to_string())));
        };
        let user = &facts.user;
        if !user.enabled {
            return Ok(Err(Refusal::UserDisabled(user.id.clone())));
        }
        let Some(user_domain) = self.enabled_domain(read, &user.domain_id).await? else {
            return Ok(Err(Refusal::UserDomainUnusable {
                user: user.id.clone(),
                domain: user.domain_id.clone(),
            }));
        };
        Ok(Ok((facts, user_domain)))
    }

    /// A user row and its current password's expiry.
    async fn user_facts(&self, read: Read, user_id: &str) -> ApiResult<Option<Arc<UserFacts>>> {
        let load = async {
            let Some(user) = self.store.get_user(user_id).await? else {
                return Ok(None);
            };
            let password_expires_at = self
                .store
                .get_password(user_id)
                .await?
                .and_then(|p| p.expires_at);
            Ok(Some(UserFacts {
                user,
                password_expires_at,
            }))
        };
        self.snapshot.read(read, user_id, load).await
    }

    /// A project or domain row.
    async fn project_row(&self, read: Read, id: &str) -> ApiResult<Option<Arc<Project>>> {
        let load = async { Ok(self.store.get_project(id).await?) };
        self.snapshot.read(read, id, load).await
    }

    /// The user's assignments on projects and domains, direct and through groups.
    pub(crate) async fn assignments_of_user(
        &self,
        read: Read,
        user_id: &str,
    ) -> ApiResult<Arc<Vec<baton_store::Assignment>>> {
        let load = async { Ok(Some(self.store.list_assignments_of_user(user_id).await?)) };
        Ok(self
            .snapshot
            .read(read, user_id, load)
            .await?
            .unwrap_or_default())
    }

    /// Fills the scope of `body` (project, domain or system) and returns the scope's effective
    /// roles with what to call the target when there are none; `None` for an unscoped token.
    async fn fill_scope(
        &self,
        read: Read,
        dir: &Directory,
        user_id: &str,
        scope: &Scope,
        body: &mut TokenBody,
    ) -> Checked<Option<(Vec<baton_store::Role>, String)>> {
        let found = match scope {
            Scope::Continuation {
                project_id,
                delegation,
                ..
            } => {
                match self.continuation_body(read, scope).await? {
                    Ok(c) => body.continuation = Some(c),
                    Err(refusal) => return Ok(Err(refusal)),
                }
                // A continued trust token is judged as the trust token was; a continued
                // application-credential token's roles are narrowed by the caller.
                if let Some(ContinuationDelegation::Trust(trust_id)) = delegation {
                    return self
                        .fill_trust_scope(read, dir, user_id, project_id, trust_id, body)
                        .await;
                }
                self.fill_project_scope(read, dir, user_id, project_id, body)
                    .await?
            }
            Scope::Project { project_id } | Scope::ApplicationCredential { project_id, .. } => {
                self.fill_project_scope(read, dir, user_id, project_id, body)
                    .await?
            }
            Scope::Domain { domain_id } => {
                let Some(domain) = self.enabled_domain(read, domain_id).await? else {
                    return Ok(Err(Refusal::DomainUnusable(domain_id.clone())));
                };
                let roles = self.domain_roles(read, dir, user_id, &domain.id).await?;
                let target = format!("domain {}", domain.id);
                body.domain = Some(IdName {
                    id: domain.id.clone(),
                    name: domain.name.clone(),
                });
                Ok((roles, target))
            }
            Scope::System { system } => {
                if system != "all" {
                    return Ok(Err(Refusal::UnknownSystemScope(system.clone())));
                }
                body.system = Some(SystemScope { all: true });
                let roles = self.system_roles(read, dir, user_id).await?;
                Ok((roles, "the system".to_string()))
            }
            Scope::Trust {
                project_id,
                trust_id,
            } => {
                return self
                    .fill_trust_scope(read, dir, user_id, project_id, trust_id, body)
                    .await
            }
            Scope::OAuth1 {
                project_id,
                access_token_id,
            } => {
                return self
                    .fill_oauth1_scope(read, dir, user_id, project_id, access_token_id, body)
                    .await
            }
            _ => return Ok(Ok(None)),
        };
        Ok(found.map(Some))
    }

    /// A project scope: the project and its domain enabled, `is_domain` and
    /// `is_admin_project` ([resource] admin_project_name / admin_project_domain_name) set.
    async fn fill_project_scope(
        &self,
        read: Read,
        dir: &Directory,
        user_id: &str,
        project_id: &str,
        body: &mut TokenBody,
    ) -> Checked<(Vec<baton_store::Role>, String)> {
        let Some(project) = self.usable_project(read, project_id).await? else {
            return Ok(Err(Refusal::ProjectUnusable(project_id.to_string())));
        };
        let Some(domain) = self.enabled_domain(read, &project.domain_id).await? else {
            return Ok(Err(Refusal::ProjectDomainDisabled(project_id.to_string())));
        };
        let roles = self.project_roles(read, dir, user_id, &project).await?;
        body.is_domain = Some(project.is_domain);
        if let (Some(name), Some(dom)) = (
            &self.config.resource.admin_project_name,
            &self.config.resource.admin_project_domain_name,
        ) {
            body.is_admin_project = Some(&project.name == name && &domain.name == dom);
        }
        let target = format!("project {}", project.id);
        body.project = Some(ScopedProject {
            domain: IdName {
                id: domain.id.clone(),
                name: domain.name.clone(),
            },
            id: project.id.clone(),
            name: project.name.clone(),
        });
        Ok(Ok((roles, target)))
    }

    /// An OAuth1 token: its access token must still exist; the roles are the access token's
    /// (with what they imply) that the user still has on the project, in the access token's
    /// order, as Keystone's token model computes them.
    async fn fill_oauth1_scope(
        &self,
        read: Read,
        dir: &Directory,
        user_id: &str,
        project_id: &str,
        access_token_id: &str,
        body: &mut TokenBody,
    ) -> Checked<Option<(Vec<baton_store::Role>, String)>> {
        let Some(access) = self.store.get_access_token(access_token_id).await? else {
            return Ok(Err(Refusal::AccessTokenUnusable(
                access_token_id.to_string(),
            )));
        };
        let (held, target) = match self
            .fill_project_scope(read, dir, user_id, project_id, body)
            .await?
        {
            Ok(found) => found,
            Err(refusal) => return Ok(Err(refusal)),
        };
        let delegated = dir.expand_roles(crate::identity::oauth1::role_ids(Some(&access.role_ids)));
        let roles = delegated
            .into_iter()
            .filter(|r| held.iter().any(|h| h.id == r.id))
            .collect();
        body.oauth1 = Some(baton_types::TokenOAuth1 {
            access_token_id: access.id,
            consumer_id: access.consumer_id,
        });
        Ok(Ok(Some((roles, target))))
    }

    /// Refuses a token that a revocation event matches; otherwise notes the list generation
    /// it was checked against, so a cache hit re-checks only after new events.
    fn unless_revoked(&self, validated: ValidatedToken) -> Result<ValidatedToken, Refusal> {
        let list = self.revocations.read().unwrap_or_else(|e| e.into_inner());
        if validated.revoked_in(&list) {
            return Err(Refusal::Revoked);
        }
        validated
            .checked_generation
            .store(list.generation, Ordering::Release);
        drop(list);
        Ok(validated)
    }

    fn app_cred_expired(&self, c: &ApplicationCredential) -> bool {
        c.expires_at
            .is_some_and(|e| self.clock.now().naive_utc() >= e)
    }

    async fn enabled_domain(&self, read: Read, id: &str) -> ApiResult<Option<Arc<Project>>> {
        Ok(self
            .project_row(read, id)
            .await?
            .filter(|d| d.is_domain && d.enabled))
    }

    async fn usable_project(&self, read: Read, id: &str) -> ApiResult<Option<Arc<Project>>> {
        Ok(self
            .project_row(read, id)
            .await?
            .filter(|p| p.enabled && !p.is_domain))
    }

    /// Effective roles on a project: direct grants to the user or their groups, grants
    /// inherited from the project's domain and from its ancestor projects, then implications
    /// (the rule is [`identity::grants_on_project`]).
    pub async fn project_roles(
        &self,
        read: Read,
        dir: &Directory,
        user_id: &str,
        project: &Project,
    ) -> ApiResult<Vec<baton_store::Role>> {
        let assignments = self.assignments_of_user(read, user_id).await?;
        let ancestors = self.ancestors(read, project).await?;
        let direct = assignments
            .iter()
            .filter(|a| identity::grants_on_project(a, &project.id, &project.domain_id, &ancestors))
            .map(|a| a.role_id.clone());
        Ok(dir.expand_roles(dedup(direct)))
    }

    /// The project's ancestors, read one row at a time: the validation path needs only this
    /// branch, not the whole tree ([`identity::ProjectTree`] serves listings).
    async fn ancestors(&self, read: Read, project: &Project) -> ApiResult<Vec<String>> {
        let mut out = Vec::new();
        let mut next = project.parent_id.clone();
        // Bounded walk: Keystone caps hierarchy depth, and a cycle must not hang us.
        for _ in 0..self.config.default.max_project_tree_depth.max(1) + 1 {
            let Some(id) = next else { break };
            match self.project_row(read, &id).await? {
                Some(p) if !p.is_domain => {
                    next = p.parent_id.clone();
                    out.push(p.id.clone());
                }
                _ => break,
            }
        }
        Ok(out)
    }

    /// Effective roles on a domain: direct grants to the user or their groups, then
    /// implications (inherited grants apply to the domain's projects, not the domain).
    pub async fn domain_roles(
        &self,
        read: Read,
        dir: &Directory,
        user_id: &str,
        domain_id: &str,
    ) -> ApiResult<Vec<baton_store::Role>> {
        let assignments = self.assignments_of_user(read, user_id).await?;
        let direct = assignments
            .iter()
            .filter(|a| identity::grants_on_domain(a, domain_id))
            .map(|a| a.role_id.clone());
        Ok(dir.expand_roles(dedup(direct)))
    }

    /// Effective roles on the system: system grants to the user or their groups, then
    /// implications.
    pub async fn system_roles(
        &self,
        read: Read,
        dir: &Directory,
        user_id: &str,
    ) -> ApiResult<Vec<baton_store::Role>> {
        let load = async {
            Ok(Some(
                self.store.list_system_assignments_of_user(user_id).await?,
            ))
        };
        let assignments: Arc<Vec<baton_store::SystemAssignment>> = self
            .snapshot
            .read(read, user_id, load)
            .await?
            .unwrap_or_default();
        Ok(dir.expand_roles(dedup(assignments.iter().map(|a| a.role_id.clone()))))
    }

    /// The projects and domains on which the user (directly or through a group) has an
    /// effective role, as Keystone's `list_projects_for_user` / `list_domains_for_user` find
    /// them for `/v3/auth/projects`, `/v3/auth/domains` and `/v3/users/{id}/projects`:
    /// inherited grants included, a target whose only roles are domain-specific (and imply
    /// nothing) left out, disabled projects and domains kept; each list in id order. Reads only
    /// the project rows the user's assignments reach.
    pub async fn scopes_for_user(&self, user_id: &str) -> ApiResult<(Vec<Project>, Vec<Project>)> {
        // The user's assignments as validation reads them: from the snapshot, which every
        // write on this node clears before answering (other nodes: within the change feed's
        // delay, as Keystone's own assignment cache).
        let assignments = self.assignments_of_user(Read::Snapshot, user_id).await?;
        if assignments.is_empty() {
            return Ok(Default::default());
        }
        let mut slice = identity::ProjectSlice::new();
        let targets: Vec<String> = assignments.iter().map(|a| a.target_id.clone()).collect();
        slice.load(&self.store, &targets).await?;
        let mut below = Vec::new();
        for a in assignments.iter().filter(|a| a.inherited) {
            if a.kind.is_domain() {
                slice.load_domain(&self.store, &a.target_id).await?;
            } else {
                below.push(a.target_id.clone());
            }
        }
        slice.load_subtrees(&self.store, &below).await?;
        let dir = self.directory.get(&self.store).await?;
        let found = identity::EffectiveTargets::compute(&assignments, slice.tree());
        let mut rows = slice.into_rows();
        // BTreeMap keys: already in id order.
        let mut pick = |map: BTreeMap<String, Vec<String>>, domains: bool| -> Vec<Project> {
            map.into_iter()
                .filter(|(_, roles)| !dir.expand_roles(roles.iter().cloned()).is_empty())
                .filter_map(|(id, _)| rows.remove(&id))
                .filter(|p| p.is_domain == domains)
                .collect()
        };
        let projects = pick(found.projects, false);
        let domains = pick(found.domains, true);
        Ok((projects, domains))
    }

    /// Whether the user has any role on the system (`/v3/auth/system` lists it then).
    pub async fn has_system_roles(&self, user_id: &str) -> ApiResult<bool> {
        let dir = self.directory.get(&self.store).await?;
        Ok(!self
            .system_roles(Read::Database, &dir, user_id)
            .await?
            .is_empty())
    }

    /// The service catalog a token scoped to this project (or unscoped, with `None`) carries.
    pub async fn catalog_for(
        &self,
        project_id: Option<&str>,
    ) -> ApiResult<Vec<baton_types::CatalogService>> {
        Ok(self
            .directory
            .get(&self.store)
            .await?
            .catalog_for(project_id))
    }

    // ----- issue ------------------------------------------------------------------------

    /// Authenticates and issues a token (`POST /v3/auth/tokens`).
    ///
    /// Tokens carry whole seconds, and a revocation event covers every token issued up to its
    /// instant: a token minted in the same second as, and after, a revocation of this user
    /// (password change, group removal) is born revoked. Rather than refuse a login that just
    /// succeeded with the new credentials, the whole request is authenticated again in the next
    /// second: credentials, the user's state and roles are checked anew, so a login that read
    /// the old password before a concurrent change fails instead of being minted again.
    pub async fn issue(
        &self,
        methods: Vec<AuthMethod>,
        scope: RequestedScope,
    ) -> ApiResult<(String, Arc<ValidatedToken>)> {
        let refused = match self.issue_once(&methods, &scope).await? {
            Ok(issued) => return Ok(issued),
            Err(Refusal::Revoked) => {
                let next = self.clock.now().trunc_subsecs(0) + chrono::Duration::seconds(1);
                self.clock.sleep_until(next).await;
                self.issue_once(&methods, &scope).await?
            }
            Err(other) => Err(other),
        };
        refused.map_err(|r| r.into_api(true))
    }

    /// One authentication and mint; the inner error is a refusal of the minted token.
    async fn issue_once(
        &self,
        methods: &[AuthMethod],
        scope: &RequestedScope,
    ) -> Checked<(String, Arc<ValidatedToken>)> {
        let began = self.write_generation.load(Ordering::Acquire);
        let auth = self.authenticate_methods(methods, scope).await?;
        // Keystone refuses any exchange of a scoped token here, with or without a requested
        // scope: without one the token would land on the default project.
        if auth.source_scoped && !self.config.token.allow_rescope_scoped_token {
            return Err(ApiError::Forbidden("identity:rescope_scoped_token".into()));
        }
        let now = self.clock.now();
        let expires_at = auth.expires_at.unwrap_or_else(|| {
            (now.trunc_subsecs(0)
                + chrono::Duration::seconds(i64::from(self.config.token.expiration)))
            .timestamp() as f64
        });
        let (token_scope, trust, expires_at) = self.token_scope(&auth, scope, expires_at).await?;
        let mut audit_ids = vec![random_audit_id()];
        if let Some(parent) = auth.parent_audit {
            audit_ids.push(parent);
        }
        let payload = TokenPayload {
            user_id: auth.user.id.clone(),
            methods: dedup(auth.method_names),
            expires_at,
            audit_ids,
            scope: token_scope,
        };
        let (token, validated) = match self.mint(&payload, now).await? {
            Ok(minted) => minted,
            Err(refusal) => return Ok(Err(refusal)),
        };
        self.consume_trust(trust.as_ref()).await?;
        self.cache_validated(&token, began, &validated);
        tracing::info!(user_id = %auth.user.id, token = %token_fingerprint(&token), "token issued");
        Ok(Ok((token, validated)))
    }

    /// Encrypts `payload` as issued at `now` and checks it as a validation would (from the
    /// database, not the snapshot), reading back what the token carries so that issue and
    /// validate render identically. The caller caches it.
    async fn mint(
        &self,
        payload: &TokenPayload,
        now: DateTime<Utc>,
    ) -> Checked<(String, Arc<ValidatedToken>)> {
        let token = self
            .formatter
            .create_token_at(payload, now.timestamp().max(0) as u64)
            .map_err(|e| ApiError::Internal(format!("token creation failed: {e}")))?;
        let (read_back, issued) = self
            .formatter
            .validate_token(&token)
            .map_err(|e| ApiError::Internal(format!("fresh token does not validate: {e}")))?;
        let issued_at = DateTime::from_timestamp(issued as i64, 0).unwrap_or_default();
        Ok(self
            .build_validated(Read::Database, read_back, issued_at)
            .await?
            .map(|v| (token, Arc::new(v))))
    }

    /// Mints a project-scoped token for a user that another endpoint authenticated
    /// (`/v3/ec2tokens` or the `oauth1` method checked a request signature). `method`
    /// (`ec2credential`, `oauth1`) is the token's only method, so the guards against delegated tokens recognise it, as in Keystone. The
    /// user, project and roles are checked as for any token (401 when refused); a token born
    /// revoked is minted again in the next second, as [`TokenService::issue`] does.
    pub async fn issue_for_credential(
        &self,
        user_id: &str,
        scope: Scope,
        method: &str,
    ) -> ApiResult<(String, Arc<ValidatedToken>)> {
        for attempt in 0..2 {
            if attempt > 0 {
                let next = self.clock.now().trunc_subsecs(0) + chrono::Duration::seconds(1);
                self.clock.sleep_until(next).await;
            }
            let began = self.write_generation.load(Ordering::Acquire);
            let now = self.clock.now();
            let payload = TokenPayload {
                user_id: user_id.to_string(),
                methods: vec![method.to_string()],
                expires_at: (now.trunc_subsecs(0)
                    + chrono::Duration::seconds(i64::from(self.config.token.expiration)))
                .timestamp() as f64,
                audit_ids: vec![random_audit_id()],
                scope: scope.clone(),
            };
            match self.mint(&payload, now).await? {
                Ok((token, v)) => {
                    self.cache_validated(&token, began, &v);
                    tracing::info!(user_id, method, token = %token_fingerprint(&token), "token issued");
                    return Ok((token, v));
                }
                Err(Refusal::Revoked) if attempt == 0 => continue,
                Err(refusal) => return Err(refusal.into_api(true)),
            }
        }
        Err(Refusal::Revoked.into_api(true))
    }

    /// Checks every identity method of an issue request (each names the same user) and
    /// gathers what a token method carries over to the new token.
    async fn authenticate_methods(
        &self,
        methods: &[AuthMethod],
        scope: &RequestedScope,
    ) -> ApiResult<Authenticated> {
        let mut user: Option<User> = None;
        let mut method_names: Vec<String> = Vec::new();
        let mut expires_at: Option<f64> = None;
        let mut parent_audit: Option<String> = None;
        let mut source_scoped = false;
        let mut from_app_cred: Option<ApplicationCredential> = None;
        for method in methods {
            let u = match method {
                AuthMethod::ApplicationCredential { cred, secret } => {
                    let (u, c) = self.authenticate_app_cred(cred, secret).await?;
                    same_user(user.as_ref(), &u)?;
                    from_app_cred = Some(c);
                    method_names.push("application_credential".into());
                    u
                }
                AuthMethod::Password {
                    user: who,
                    password,
                } => {
                    let u = self.authenticate_password(who, password).await?;
                    same_user(user.as_ref(), &u)?;
                    method_names.push("password".into());
                    u
                }
                AuthMethod::OAuth1 => {
                    return Err(ApiError::unauthorized(
                        "the oauth1 method cannot be combined with other methods",
                    ))
                }
                AuthMethod::Token { token } => {
                    // Keystone validates the source token and lets its 404 through.
                    let source = self.validate(token, false).await?;
                    let u = self
                        .store
                        .get_user(source.user_id())
                        .await?
                        .ok_or_else(|| ApiError::token_not_found("token user vanished"))?;
                    same_user(user.as_ref(), &u)?;
                    refuse_exchange(&source)?;
                    source_scoped = !matches!(source.payload.scope, Scope::Unscoped);
                    if source.body.system.is_some()
                        && !matches!(scope, RequestedScope::System | RequestedScope::Default)
                    {
                        return Err(ApiError::Forbidden("identity:rescope_system_token".into()));
                    }
                    expires_at = Some(source.payload.expires_at);
                    parent_audit = source.payload.audit_ids.last().cloned();
                    method_names.push("token".into());
                    method_names.extend(source.payload.methods.iter().cloned());
                    u
                }
            };
            user = Some(u);
        }
        Ok(Authenticated {
            user: user.ok_or_else(|| ApiError::unauthorized("no identity"))?,
            method_names,
            expires_at,
            parent_audit,
            source_scoped,
            app_cred: from_app_cred,
        })
    }

    /// Verifies `password` against the user's current password, off the async workers. An
    /// unknown user, or one without a password, costs the same bcrypt verify against a dummy
    /// hash, so timing does not tell users apart. Returns the password record, if any, and the
    /// verdict.
    pub async fn check_password(
        &self,
        user: Option<&User>,
        password: &str,
    ) -> ApiResult<(
        Option<PasswordRecord>,
        Result<bool, password::PasswordError>,
    )> {
        let record = match user {
            Some(u) => self.store.get_password(&u.id).await?,
            None => None,
        };
        let hash = record
            .as_ref()
            .map(|r| r.hash.clone())
            .unwrap_or_else(|| self.dummy_hash.clone());
        let candidate = Zeroizing::new(password.to_string());
        // bcrypt is deliberately slow: keep it off the async workers, in the bounded slots.
        let verified = self
            .hashing
            .run(move || password::verify_password(&candidate, &hash))
            .await?;
        Ok((record, verified))
    }

    async fn authenticate_password(&self, who: &UserRef, password: &str) -> ApiResult<User> {
        // Before the user is looked up: Keystone answers this 403 only for users that exist
        // and have a password (401 otherwise), which tells user ids apart.
        password::refuse_truncation(&self.config, password)?;
        if password.len() > self.config.identity.max_password_length as usize {
            return Err(ApiError::unauthorized(
                "password longer than [identity] max_password_length",
            ));
        }
        let (user, domain) = match who {
            UserRef::Id(id) => (self.store.get_user(id).await?, None),
            UserRef::Name { name, domain } => match self.resolve_domain(domain).await? {
                Some(d) => (self.store.find_user(name, &d.id).await?, Some(d)),
                None => (None, None),
            },
        };
        let result = self.verify_password_login(user, password).await;
        if self.audit.enabled() {
            self.audit_login(who, domain.as_ref(), password, &result)
                .await;
        }
        result.map_err(|(_, e)| e)
    }

    /// `identity.authenticate` for a password login, as Keystone describes it: the user as
    /// initiator, or for an unknown user the name and domain asked for, with a 404 reason.
    async fn audit_login(
        &self,
        who: &UserRef,
        domain: Option<&Project>,
        password: &str,
        result: &Result<User, (Option<User>, ApiError)>,
    ) {
        use baton_audit::cadf::{self, Outcome, Reason};
        let as_initiator = |u: &User| {
            cadf::user_initiator(&cadf::User {
                id: u.id.clone(),
                name: u.name.clone(),
                ..Default::default()
            })
        };
        let (outcome, initiator, reason) = match result {
            Ok(u) => (Outcome::Success, as_initiator(u), None),
            Err((Some(u), e)) => {
                // Keystone gives a reason for the PCI-DSS refusals only.
                let reason = match e {
                    ApiError::PasswordExpired(_) => Some(e.to_string()),
                    ApiError::Unauthorized { detail }
                        if detail.starts_with("The account is locked") =>
                    {
                        Some(detail.clone())
                    }
                    _ => None,
                };
                let reason = reason.map(|message| Reason { message, code: 401 });
                (Outcome::Failure, as_initiator(u), reason)
            }
            Err((None, _)) => {
                let (asked, fields) = match (who, domain) {
                    (UserRef::Id(id), _) => (id.clone(), vec![("user_id", id.as_str())]),
                    (UserRef::Name { name, .. }, Some(d)) => (
                        name.clone(),
                        vec![
                            ("user_name", name.as_str()),
                            ("domain_id", d.id.as_str()),
                            ("domain_name", d.name.as_str()),
                        ],
                    ),
                    // Keystone sends nothing when the domain is unknown.
                    (UserRef::Name { .. }, None) => return,
                };
                let reason = Reason {
                    message: format!("Could not find user: {asked}."),
                    code: 404,
                };
                (
                    Outcome::Failure,
                    cadf::unknown_user_initiator(&fields),
                    Some(reason),
                )
            }
        };
        // Keystone attaches the partial hash to a wrong password's failure only.
        let partial_hash = match (
            result,
            &self.config.security_compliance.invalid_password_hash,
        ) {
            (Err((Some(_), ApiError::Unauthorized { detail })), Some(how))
                if detail.starts_with(INVALID_PASSWORD) =>
            {
                Some(password::partial_password_hash(how, password))
            }
            _ => None,
        };
        self.audit
            .authenticate(outcome, initiator, reason, partial_hash)
            .await;
    }

    /// The password check of a login for `user` (found or not); a failure carries the user
    /// when there was one, for the audit event.
    async fn verify_password_login(
        &self,
        user: Option<User>,
        password: &str,
    ) -> Result<User, (Option<User>, ApiError)> {
        match self.verify_password_of(user.as_ref(), password).await {
            Ok(()) => user.ok_or((None, ApiError::unauthorized("no user"))),
            Err(e) => Err((user, e)),
        }
    }

    async fn verify_password_of(&self, user: Option<&User>, password: &str) -> ApiResult<()> {
        let (record, verified) = self.check_password(user, password).await?;
        let (Some(user), Some(record)) = (user, record) else {
            return Err(ApiError::unauthorized(
                "unknown user or user without a password",
            ));
        };
        // The password was checked whatever the lockout says: a locked account answers as
        // slowly as any other.
        let failed = self.check_lockout(&user.id).await?;
        match verified {
            Ok(true) => {}
            Ok(false) => {
                if failed.is_some() {
                    self.store
                        .record_failed_login(&user.id, self.clock.now().naive_utc())
                        .await?;
                }
                return Err(ApiError::unauthorized(format!(
                    "{INVALID_PASSWORD} {}",
                    user.id
                )));
            }
            Err(e) => return Err(ApiError::unauthorized(format!("user {}: {e}", user.id))),
        }
        self.refuse_unusable_user(user).await?;
        if let Some(exp) = record.expires_at {
            if exp <= self.clock.now().naive_utc()
                && !self
                    .user_option_set(&user.id, IGNORE_PASSWORD_EXPIRY)
                    .await?
            {
                return Err(ApiError::PasswordExpired(user.id.clone()));
            }
        }
        if failed.is_some_and(|f| f.count > 0) {
            self.store.reset_failed_logins(&user.id).await?;
        }
        // Keystone records every successful password login (for
        // `disable_user_account_days_inactive`), whether or not the limit is on.
        self.store
            .record_user_active(&user.id, self.clock.now().date_naive())
            .await?;
        Ok(())
    }

    /// Whether the user's boolean resource option `option` (its id) is true.
    pub(crate) async fn user_option_set(&self, user_id: &str, option: &str) -> ApiResult<bool> {
        Ok(self
            .store
            .user_options(&[user_id.to_string()])
            .await?
            .get(user_id)
            .is_some_and(|opts| {
                opts.iter()
                    .any(|(id, v)| id == option && v.as_deref() == Some("true"))
            }))
    }

    /// `[security_compliance] lockout_failure_attempts`: refuses a locked-out user (401, the
    /// reason in the log only, as Keystone hides it), starts the count again when the lockout
    /// ran out, and returns the user's failed logins; `None` when lockout is off.
    async fn check_lockout(&self, user_id: &str) -> ApiResult<Option<FailedLogins>> {
        let options = &self.config.security_compliance;
        if options.lockout_failure_attempts.is_none() {
            return Ok(None);
        }
        let failed = self.store.failed_logins(user_id).await?;
        let exempt = self
            .user_option_set(user_id, IGNORE_LOCKOUT_FAILURE_ATTEMPTS)
            .await?;
        match password::lockout(options, failed, exempt, self.clock.now().naive_utc()) {
            Lockout::Open => Ok(Some(failed)),
            Lockout::Locked => Err(ApiError::unauthorized(format!(
                "The account is locked for user: {user_id}."
            ))),
            Lockout::Expired => {
                self.store.reset_failed_logins(user_id).await?;
                Ok(Some(FailedLogins::default()))
            }
        }
    }

    /// Keystone's `application_credential` method: the credential by id (404 when unknown, as
    /// Keystone answers) or by name and owner (401), the secret checked against its hash (off
    /// the async workers), not expired, and its user enabled in an enabled domain.
    async fn authenticate_app_cred(
        &self,
        cred: &AppCredRef,
        secret: &str,
    ) -> ApiResult<(User, ApplicationCredential)> {
        let invalid = || ApiError::unauthorized("Invalid application credential ID or secret");
        let found = match cred {
            AppCredRef::Id(id) => self
                .store
                .get_application_credential(id)
                .await?
                .ok_or_else(|| {
                    ApiError::NotFound(format!("Could not find Application Credential: {id}."))
                })?,
            AppCredRef::Name { name, user } => {
                let owner = match user {
                    UserRef::Id(id) => self.store.get_user(id).await?,
                    UserRef::Name { name, domain } => match self.resolve_domain(domain).await? {
                        Some(d) => self.store.find_user(name, &d.id).await?,
                        None => None,
                    },
                };
                let not_found = || {
                    ApiError::unauthorized(format!("Could not find application credential: {name}"))
                };
                let owner = owner.ok_or_else(not_found)?;
                let mut list = self
                    .store
                    .list_application_credentials(&owner.id, Some(name))
                    .await?;
                if list.len() != 1 {
                    return Err(not_found());
                }
                list.remove(0)
            }
        };
        let candidate = Zeroizing::new(secret.to_string());
        let hash = found.secret_hash.clone();
        let verified = self
            .hashing
            .run(move || password::verify_password(&candidate, &hash))
            .await?;
        if !matches!(verified, Ok(true)) || self.app_cred_expired(&found) {
            return Err(invalid());
        }
        let user = self
            .store
            .get_user(&found.user_id)
            .await?
            .ok_or_else(invalid)?;
        self.refuse_unusable_user(&user).await?;
        Ok((user, found))
    }

    /// 401 for a disabled user or a user of a disabled domain, whatever the method.
    async fn refuse_unusable_user(&self, user: &User) -> ApiResult<()> {
        if !user.enabled {
            return Err(ApiError::unauthorized(format!(
                "user {} is disabled",
                user.id
            )));
        }
        if self
            .enabled_domain(Read::Database, &user.domain_id)
            .await?
            .is_none()
        {
            return Err(ApiError::unauthorized(format!(
                "domain {} is disabled",
                user.domain_id
            )));
        }
        Ok(())
    }

    async fn resolve_domain(&self, d: &DomainRef) -> ApiResult<Option<Project>> {
        Ok(match d {
            DomainRef::Id(id) => self.store.get_domain(id).await?,
            DomainRef::Name(name) => self.store.find_domain(name).await?,
        })
    }

    async fn resolve_scope(&self, user: &User, scope: RequestedScope) -> ApiResult<Scope> {
        Ok(match scope {
            RequestedScope::Unscoped => Scope::Unscoped,
            RequestedScope::Default => {
                // Keystone scopes to the default project when it is usable and the user has a
                // role there; otherwise the token is unscoped.
                if let Some(pid) = &user.default_project_id {
                    if let Some(p) = self.usable_project(Read::Database, pid).await? {
                        let dir = self.directory.get(&self.store).await?;
                        if self
                            .enabled_domain(Read::Database, &p.domain_id)
                            .await?
                            .is_some()
                            && !self
                                .project_roles(Read::Database, &dir, &user.id, &p)
                                .await?
                                .is_empty()
                        {
                            return Ok(Scope::Project {
                                project_id: p.id.clone(),
                            });
                        }
                    }
                }
                Scope::Unscoped
            }
            RequestedScope::ProjectId(id) => {
                let p = self
                    .store
                    .get_project(&id)
                    .await?
                    .filter(|p| !p.is_domain)
                    .ok_or_else(|| ApiError::unauthorized(format!("project {id} not found")))?;
                Scope::Project { project_id: p.id }
            }
            RequestedScope::ProjectName { name, domain } => {
                let d = self
                    .resolve_domain(&domain)
                    .await?
                    .ok_or_else(|| ApiError::unauthorized("project domain not found"))?;
                let p = self
                    .store
                    .find_project(&name, &d.id)
                    .await?
                    .ok_or_else(|| {
                        ApiError::unauthorized(format!(
                            "project {name} not found in domain {}",
                            d.id
                        ))
                    })?;
                Scope::Project { project_id: p.id }
            }
            RequestedScope::Domain(d) => {
                let d = self
                    .resolve_domain(&d)
                    .await?
                    .ok_or_else(|| ApiError::unauthorized("domain not found"))?;
                Scope::Domain { domain_id: d.id }
            }
            RequestedScope::System => Scope::System {
                system: "all".into(),
            },
            RequestedScope::Trust(id) => {
                return Err(ApiError::unauthorized(format!(
                    "trust {id} resolved elsewhere"
                )))
            }
        })
    }

    // ----- revoke -----------------------------------------------------------------------

    /// Revokes a token by its audit id (`DELETE /v3/auth/tokens`) and, with `cascade` (Keystone
    /// 30's default), every token rescoped from it. A rescoped token records only the root of
    /// its chain (the first login's audit id), so the chain event names the root: revoking a
    /// token in the middle of a chain also ends its siblings, never leaves a descendant valid.
    /// (Keystone 30 names the token's own audit id, which misses descendants of a rescoped
    /// token.)
    pub async fn revoke(&self, validated: &ValidatedToken, cascade: bool) -> ApiResult<()> {
        let ids = &validated.payload.audit_ids;
        self.revoke_now(RevocationEvent {
            audit_id: ids.first().cloned(),
            ..Default::default()
        })
        .await?;
        // A continuation token shares the user's chain; its actor ending the operation must not
        // end the user's login, so only the token itself is revoked.
        let cascade = cascade && validated.payload.actor_id().is_none();
        if let (true, Some(root)) = (cascade, ids.last()) {
            self.revoke_now(RevocationEvent {
                audit_chain_id: Some(root.clone()),
                ..Default::default()
            })
            .await?;
        }
        Ok(())
    }

    /// Revokes every token issued up to now that matches the fields `ev` sets. Stamped in whole
    /// seconds like Keystone's events (tokens carry whole seconds too).
    pub async fn revoke_now(&self, ev: RevocationEvent) -> ApiResult<()> {
        let now = self.clock.now().trunc_subsecs(0).naive_utc();
        self.add_revocation(RevocationEvent {
            issued_before: now,
            revoked_at: now,
            ..ev
        })
        .await
    }

    /// Stores a revocation event as given and loads it (with any other node's) before
    /// returning, so the next request already sees it.
    pub async fn add_revocation(&self, ev: RevocationEvent) -> ApiResult<()> {
        self.store.add_revocation_event(&ev).await?;
        self.changes
            .record(crate::changes::ChangeKind::Revocation)
            .await;
        // Picks up our event (and any other node's) before answering, so the revoked token is
        // refused from the next request on.
        self.refresh_revocations().await?;
        Ok(())
    }
}

/// Keystone's refusals of a token offered to the `token` method: tokens from a delegation
/// (OAuth1, an application credential, EC2, a continuation, a trust) are never exchanged for
/// another (it could escape the delegation's roles).
fn refuse_exchange(source: &ValidatedToken) -> ApiResult<()> {
    if matches!(source.payload.scope, Scope::OAuth1 { .. }) {
        return Err(ApiError::Forbidden("Using OAuth-scoped token to create another token. Create a new OAuth-scoped token instead".into()));
    }
    if source.payload.app_cred_id().is_some()
        || source.payload.actor_id().is_some()
        || source
            .payload
            .methods
            .iter()
            .any(|m| m == "application_credential" || m == "ec2credential")
    {
        return Err(ApiError::Forbidden(
            "Using a delegated token to create another token is not allowed.".into(),
        ));
    }
    if source.payload.trust_id().is_some() {
        return Err(ApiError::Forbidden("Using trust-scoped token to create another token. Create a new trust-scoped token instead".into()));
    }
    Ok(())
}

/// The start of the (logged) reason of a login refused for a wrong password.
const INVALID_PASSWORD: &str = "invalid password for user";

/// Refuses the payload kinds this deployment does not serve (trust, federation, OAuth,
/// application credentials): they decrypt, but Baton cannot check what they claim.
fn unsupported_scope(scope: &Scope) -> Option<Refusal> {
    match scope {
        Scope::Unscoped
        | Scope::Domain { .. }
        | Scope::Project { .. }
        | Scope::ApplicationCredential { .. }
        | Scope::Trust { .. }
        | Scope::OAuth1 { .. }
        | Scope::System { .. }
        | Scope::Continuation { .. } => None,
        other => Some(Refusal::UnsupportedPayload {
            version: other.payload_version(),
            kind: scope_kind(other),
        }),
    }
}

/// An application credential's token is scoped to the credential's project, whatever the
/// request asked (parsing refused a scope).
fn app_cred_scope(c: &ApplicationCredential) -> ApiResult<Scope> {
    Ok(Scope::ApplicationCredential {
        project_id: c
            .project_id
            .clone()
            .ok_or_else(|| ApiError::unauthorized("application credential has no project"))?,
        app_cred_id: c.id.clone(),
    })
}

/// Keystone (CVE-2022-2447): a token never outlives its application credential.
fn within_app_cred(expires_at: f64, c: Option<&ApplicationCredential>) -> f64 {
    match c.and_then(|c| c.expires_at) {
        Some(e) => expires_at.min(e.and_utc().timestamp_micros() as f64 / 1_000_000.0),
        None => expires_at,
    }
}

/// The credential's roles that `roles` (the user's on the project) still has, in the
/// credential's order.
fn restrict_to_app_cred(
    cred: &ApplicationCredential,
    roles: &[baton_store::Role],
) -> Vec<baton_store::Role> {
    cred.role_ids
        .iter()
        .filter_map(|id| roles.iter().find(|r| &r.id == id).cloned())
        .collect()
}

/// What a token body says of its application credential.
fn app_cred_body(cred: &ApplicationCredential) -> baton_types::TokenAppCred {
    baton_types::TokenAppCred {
        id: cred.id.clone(),
        name: cred.name.clone(),
        restricted: !cred.unrestricted,
        access_rules: cred.access_rules.as_ref().map(|rules| {
            rules
                .iter()
                .map(|r| baton_types::AccessRuleBody {
                    id: r.id.clone(),
                    service: r.service.clone(),
                    path: r.path.clone(),
                    method: r.method.clone(),
                })
                .collect()
        }),
    }
}

/// The token's JSON without the catalog, rendered once, and the catalog it shows: a token with
/// roles shows one (shared per project, see [`ValidatedToken::json`]), a token without none.
fn render_body(body: &TokenBody, dir: &Directory) -> ApiResult<(Bytes, Option<Bytes>)> {
    let internal = |e: serde_json::Error| ApiError::Internal(e.to_string());
    let without = serde_json::to_vec(&baton_types::TokenResponse {
        token: body.clone(),
    })
    .map_err(internal)?;
    let catalog = if body.roles.is_some() {
        let project = body.project.as_ref().map(|p| p.id.as_str());
        Some(dir.catalog_json(project).map_err(internal)?)
    } else {
        None
    };
    Ok((Bytes::from(without), catalog))
}

fn scope_kind(s: &Scope) -> &'static str {
    match s {
        Scope::Trust { .. } => "trust",
        Scope::FederatedUnscoped { .. }
        | Scope::FederatedProject { .. }
        | Scope::FederatedDomain { .. } => "federated",
        Scope::OAuth1 { .. } => "OAuth1",
        Scope::ApplicationCredential { .. } => "application credential",
        Scope::OAuth2Credential { .. } => "OAuth2 credential",
        Scope::Continuation { .. } => "continuation",
        _ => "standard",
    }
}

fn dedup(items: impl IntoIterator<Item = String>) -> Vec<String> {
    let mut seen = std::collections::HashSet::new();
    items
        .into_iter()
        .filter(|i| seen.insert(i.clone()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A token service over a throwaway SQLite database with the bootstrap admin, and a token
    /// of the admin's (issued and therefore cached).
    async fn service() -> (Arc<TokenService>, String, tempfile::TempDir) {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut config = IdentityConfig::default();
        config.database.connection = Some(format!("sqlite:///{}/k.db", dir.path().display()));
        config.fernet_tokens.key_repository = dir.path().join("keys");
        config.identity.password_hash_rounds = Some(4);
        baton_token::KeyRepository::new(&config.fernet_tokens.key_repository, 3)
            .setup()
            .expect("fernet_setup");
        let store = Store::connect(config.database.connection.as_deref().unwrap_or_default())
            .await
            .expect("connect");
        store.db_sync().await.expect("db_sync");
        crate::bootstrap::bootstrap(
            &config,
            &store,
            &crate::bootstrap::BootstrapOptions {
                password: "Adm1n-Secret-q8Zr2".into(),
                username: "admin".into(),
                project_name: Some("admin".into()),
                role_name: "admin".into(),
                service_name: Some("keystone".into()),
                region_id: Some("RegionOne".into()),
                public_url: Some("http://127.0.0.1:5000/v3".into()),
                // A placeholder makes the catalog differ per project.
                internal_url: Some("http://127.0.0.1:5000/v3/$(project_id)s".into()),
                admin_url: None,
            },
        )
        .await
        .expect("bootstrap");
        let state = crate::AppState::open(config).await.expect("open");
        let svc = state.tokens.clone();
        let (token, _) = svc
            .issue(
                vec![AuthMethod::Password {
                    user: UserRef::Name {
                        name: "admin".into(),
                        domain: DomainRef::Id("default".into()),
                    },
                    password: Zeroizing::new("Adm1n-Secret-q8Zr2".into()),
                }],
                RequestedScope::ProjectName {
                    name: "admin".into(),
                    domain: DomainRef::Id("default".into()),
                },
            )
            .await
            .expect("issue");
        (svc, token, dir)
    }

    /// Review 2026-12 #4: every spelling of a token (with or without base64 padding) is one
    /// cache entry, so an uncached spelling cannot bring back a result the cache dropped.
    #[tokio::test]
    async fn padded_spellings_share_one_cache_entry() {
        let (svc, token, _dir) = service().await;
        svc.invalidate_caches();
        svc.validate(&format!("{token}=="), false)
            .await
            .expect("padded spelling validates");
        let plain: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        assert!(
            svc.validated.contains_key(&plain),
            "the padded spelling was cached under its own key"
        );
    }

    /// Review 2026-12 #4: a validation that read the data before a write is not cached after
    /// it (the write's invalidation would otherwise be undone by the late insert).
    #[tokio::test]
    async fn a_validation_that_began_before_a_write_is_not_cached() {
        let (svc, token, _dir) = service().await;
        svc.invalidate_caches();
        // The steps of a cache miss, with a write landing while the validation is in flight.
        let began = svc.write_generation.load(Ordering::Acquire);
        let v = Arc::new(svc.validate_uncached(&token).await.expect("validates"));
        svc.invalidate_caches();
        svc.cache_validated(&token, began, &v);
        assert!(!svc.validated.contains_key(&cache_key(&token)));
        // A validation with no write meanwhile is cached as before.
        svc.validate(&token, false).await.expect("validates");
        assert!(svc.validated.contains_key(&cache_key(&token)));
    }

    /// Issue 15 item 1: an entry holds one JSON body; the catalog is rendered once per project,
    /// shared, and spliced in so that the answer is what rendering the whole body gives.
    #[tokio::test]
    async fn the_catalog_is_shared_and_spliced_into_the_body() {
        let (svc, token, _dir) = service().await;
        let v = svc.validate(&token, false).await.expect("validates");
        let with: serde_json::Value = serde_json::from_slice(&v.json(true)).expect("JSON");
        let without: serde_json::Value = serde_json::from_slice(&v.json(false)).expect("JSON");
        let dir = svc.directory_snapshot().await.expect("directory");
        let mut whole = v.body.clone();
        let project = whole
            .project
            .as_ref()
            .map(|p| p.id.clone())
            .expect("scoped");
        whole.catalog = Some(dir.catalog_for(Some(&project)));
        let whole =
            serde_json::to_value(baton_types::TokenResponse { token: whole }).expect("JSON");
        assert_eq!(with, whole);
        assert!(without["token"].get("catalog").is_none());
        assert!(
            with.to_string().contains(&format!("/v3/{project}")),
            "{with}"
        );
        // Another token of the project shares the same rendered catalog.
        let again = svc.validate_uncached(&token).await.expect("validates");
        let (a, b) = (v.catalog.as_ref(), again.catalog.as_ref());
        assert_eq!(a.map(|c| c.as_ptr()), b.map(|c| c.as_ptr()));
        let weight = v.weight();
        eprintln!(
            "{weight} bytes per entry ({} of them the JSON, {} the struct)",
            v.json_without_catalog.len(),
            std::mem::size_of::<ValidatedToken>()
        );
        assert!((1500..8192).contains(&weight), "{weight} bytes per entry");
    }

    /// The `[auth] methods` default fixes each method's bit in Fernet payloads; the config
    /// default and the token codec's must never drift apart.
    #[test]
    fn auth_method_defaults_agree() {
        assert_eq!(
            baton_config::DEFAULT_AUTH_METHODS,
            &baton_token::payload::DEFAULT_AUTH_METHODS[..]
        );
    }
}
