//! `[keystone_authtoken]`: keystonemiddleware's option names, meanings and defaults, plus
//! Baton's few additions, read from an oslo INI file or set with a builder.
//!
//! | option | default | meaning |
//! |---|---|---|
//! | `www_authenticate_uri` (alias `auth_uri`) | the auth plugin's `auth_url` | the URI in `WWW-Authenticate: Keystone uri="..."` |
//! | `auth_type`, `auth_section`, `auth_url`, `username`, ... | (required) | how the middleware authenticates as its own service user (baton-client's `AuthConfig`) |
//! | `interface` | `internal` | the identity endpoint of its token's catalog to validate against |
//! | `region_name` | any | region of that endpoint |
//! | `service_token_roles` | `service` | a service token must hold one of these (any match) |
//! | `service_token_roles_required` | `true` | without one, the service token is `Invalid` (else only the allow_expired grant is withheld) |
//! | `delay_auth_decision` | `false` | pass unconfirmed requests on, with `Invalid` statuses |
//! | `token_cache_time` | `300` | seconds a validation is reused; `-1` (or `0`) disables caching |
//! | `include_service_catalog` | `true` | validate with the catalog and pass it on in `X-Service-Catalog` |
//! | `http_connect_timeout` | 10 s connect, 60 s total | seconds for connecting to, and for each call to, the identity service |
//! | `http_request_max_retries` | `3` | retries of a call that could not connect |
//! | `cafile`, `certfile`, `keyfile`, `insecure`, `timeout` | | TLS and timeout of the identity calls |
//! | `memcached_servers` (alias `memcache_servers`) | | keystonemiddleware's memcached token cache, shared with it ([`crate::memcache_crypt`]): `host:port` items, python-memcached's forms |
//! | `memcache_security_strategy` | `None` | `MAC` or `ENCRYPT` (any case): entries authenticated, or encrypted and authenticated |
//! | `memcache_secret_key` | (required with a strategy) | the keys of every entry are derived from it; also `cache_secret_key` when that is unset |
//! | `memcache_pool_socket_timeout` | `3` | seconds for connecting to memcached and one operation, together |
//! | `memcache_pool_dead_retry` | `300` | seconds a memcached server that failed is left alone |
//! | `memcache_pool_maxsize` | `10` | connections per memcached server |
//! | `memcache_pool_unused_timeout`, `memcache_pool_conn_get_timeout` | `60`, `10` | idle connections closed after; longest wait for a free one |
//! | `memcache_use_advanced_pool` | `true` | accepted; Baton's pool is always the one shared by all requests |
//! | `memcache_sasl_enabled`, `memcache_tls_enabled` | `false` | `true` is refused: neither is built in |
//! | **`redis_url`** | none | a shared validation cache (`redis://host:port/db`) |
//! | **`cache_secret_key`** | (required with `redis_url`) | the HMAC-SHA256 key of every shared-cache entry |
//! | **`redis_timeout`** | `0.25` | seconds for connecting to Redis and for each operation |
//! | **`redis_retry_interval`** | `30` | seconds Redis is left alone after a failure |
//! | **`negative_cache_time`** | `3` | seconds a refusal by the identity service is reused (`0` disables) |
//! | **`allow_expired_window`** | `172800` | the identity server's `[token] allow_expired_window`: bounds how long past expiry a cached allow_expired validation is reused |
//! | **`diagnose_expired_tokens`** | `true` | when the identity service refuses a token, ask once more with `allow_expired` to tell `*_expired` from `*_invalid` (never grants anything) |
//! | **`validate_token_pairs`** | `true` | when the identity server offers it (Baton does, Keystone does not), validate a request's user and service tokens in one call (`GET /v3/baton/token_pairs/validate`), which also applies the server's per-sender windows |
//! | **`expose_failure_reason`** | `false` | send `x-auth-failure-reason` on refusals |
//! | **`token_cache_size`** | `10000` | entries in each in-process cache |
//!
//! Options in bold are Baton's own.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use baton_client::config::{AUTH_OPTIONS, SESSION_OPTIONS};
use baton_client::{
    AuthConfig, AuthPlugin, HttpOptions, Interface, RetryPolicy, SecretString, SessionConfig, Url,
    SERVICE_ROLE,
};
use baton_config::{ConfigError, ConfigErrorKind, IniFile, SectionReader};

use crate::memcache_crypt::Strategy;
use crate::memcached::{server_address, PoolOptions};

/// The section keystonemiddleware reads.
pub const DEFAULT_SECTION: &str = "keystone_authtoken";

/// keystonemiddleware's `token_cache_time` default.
pub const DEFAULT_TOKEN_CACHE_TIME: Duration = Duration::from_secs(300);
/// Keystone's `[token] allow_expired_window` default (48 h).
pub const DEFAULT_ALLOW_EXPIRED_WINDOW: Duration = Duration::from_secs(48 * 3600);
/// Seconds a refusal by the identity service is reused (`negative_cache_time`), so a flood
/// of bad tokens does not reach it.
pub const DEFAULT_NEGATIVE_CACHE_TIME: Duration = Duration::from_secs(3);
/// `redis_timeout`: bound on connecting to Redis and on each operation.
pub const DEFAULT_REDIS_TIMEOUT: Duration = Duration::from_millis(250);
/// `redis_retry_interval`: Redis is left alone this long after a failure.
pub const DEFAULT_REDIS_RETRY_INTERVAL: Duration = Duration::from_secs(30);
/// keystonemiddleware's `memcache_pool_socket_timeout`.
pub const DEFAULT_MEMCACHE_SOCKET_TIMEOUT: Duration = Duration::from_secs(3);
/// keystonemiddleware's `memcache_pool_dead_retry`.
pub const DEFAULT_MEMCACHE_DEAD_RETRY: Duration = Duration::from_secs(300);
/// keystonemiddleware's `memcache_pool_maxsize`.
pub const DEFAULT_MEMCACHE_POOL_MAXSIZE: usize = 10;
/// `token_cache_size`: entries in each in-process cache.
pub const DEFAULT_CACHE_SIZE: u64 = 10_000;

/// Errors of [`AuthTokenConfigBuilder::build`] and [`crate::Authenticator::new`].
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The INI file is wrong; the message names file, line, section and option.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// An option is unusable (the message says which and why).
    #[error("{0}")]
    Invalid(String),
    /// The identity client cannot be built from these options (TLS files, URLs).
    #[error("cannot set up the identity client: {0}")]
    Client(#[from] baton_client::Error),
}

/// The shared (Redis) validation cache.
#[derive(Clone)]
pub struct SharedCacheConfig {
    /// `redis://[user:password@]host:port[/db]`.
    pub redis_url: String,
    /// HMAC-SHA256 key for every entry.
    pub secret: SecretString,
    /// Bound on connecting and on each operation.
    pub timeout: Duration,
    /// How long the cache is left alone after a failure before connecting again.
    pub retry_interval: Duration,
}

impl fmt::Debug for SharedCacheConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SharedCacheConfig")
            .field("redis_url", &redact_url(&self.redis_url))
            .field("secret", &self.secret)
            .field("timeout", &self.timeout)
            .field("retry_interval", &self.retry_interval)
            .finish()
    }
}

/// A URL for messages: without its password.
pub(crate) fn redact_url(url: &str) -> String {
    match Url::parse(url) {
        Ok(mut u) => {
            if u.password().is_some() {
                let _ = u.set_password(Some("<redacted>"));
            }
            u.to_string()
        }
        Err(_) => "<unparsable URL>".into(),
    }
}

/// keystonemiddleware's memcached token cache (`memcached_servers`).
#[derive(Clone)]
pub struct MemcacheConfig {
    /// `host:port` items, in order: the order decides which server holds which token, as in
    /// python-memcached.
    pub servers: Vec<String>,
    /// `memcache_security_strategy`.
    pub strategy: Strategy,
    /// `memcache_secret_key`; required unless the strategy is `None`.
    pub secret: Option<SecretString>,
    /// The `memcache_pool_*` options.
    pub pool: PoolOptions,
}

impl MemcacheConfig {
    /// `servers` with `strategy` and keystonemiddleware's pool defaults.
    pub fn new(
        servers: Vec<String>,
        strategy: Strategy,
        secret: Option<SecretString>,
    ) -> MemcacheConfig {
        MemcacheConfig {
            servers,
            strategy,
            secret,
            pool: PoolOptions {
                socket_timeout: DEFAULT_MEMCACHE_SOCKET_TIMEOUT,
                dead_retry: DEFAULT_MEMCACHE_DEAD_RETRY,
                maxsize: DEFAULT_MEMCACHE_POOL_MAXSIZE,
                unused_timeout: Duration::from_secs(60),
                conn_get_timeout: Duration::from_secs(10),
            },
        }
    }
}

impl fmt::Debug for MemcacheConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemcacheConfig")
            .field("servers", &self.servers)
            .field("strategy", &self.strategy)
            .field("secret", &self.secret)
            .field("pool", &self.pool)
            .finish()
    }
}

/// Everything the middleware needs. Build it from an INI file ([`AuthTokenConfig::from_ini`])
/// or in code ([`AuthTokenConfig::builder`]).
#[derive(Clone)]
pub struct AuthTokenConfig {
    /// The URI sent in `WWW-Authenticate: Keystone uri="..."` on 401s, where clients get a
    /// token.
    pub www_authenticate_uri: String,
    /// The middleware's own identity (keep one per process: it caches its token).
    pub auth: Arc<dyn AuthPlugin>,
    /// Transport of the identity calls (timeouts, TLS, retries).
    pub http: HttpOptions,
    /// Which endpoint of the identity service in the catalog tokens are validated against.
    pub interface: Interface,
    /// The region of that endpoint; `None`: any.
    pub region_name: Option<String>,
    /// A service token must hold one of these roles (`service` by default) to count as one and
    /// to let an expired user token through within allow_expired_window.
    pub service_token_roles: Vec<String>,
    /// Without such a role the service token is Invalid (on), or valid but without the
    /// allow_expired grant (off, insecure).
    pub service_token_roles_required: bool,
    /// Pass unauthenticated requests on with `Invalid` statuses instead of answering 401.
    pub delay_auth_decision: bool,
    /// `None`: no caching (`token_cache_time = -1`).
    pub token_cache_time: Option<Duration>,
    /// Zero: refusals are not cached.
    pub negative_cache_time: Duration,
    /// Entries in each in-process cache (`token_cache_size`).
    pub cache_size: u64,
    /// The identity server's `[token] allow_expired_window`: how long past expiry a cached
    /// allow_expired validation may still be reused.
    pub allow_expired_window: Duration,
    /// Validate with the catalog and pass it on in `X-Service-Catalog`.
    pub include_service_catalog: bool,
    /// Send `x-auth-failure-reason` on refusals, so senders learn which token failed.
    pub expose_failure_reason: bool,
    /// When a token is refused, ask again with allow_expired to tell an expired token from an
    /// invalid one (for the reason only; it never grants anything).
    pub diagnose_expired_tokens: bool,
    /// Validate a request's two tokens in one call when the identity server offers it.
    pub validate_token_pairs: bool,
    /// The Redis cache shared by the service's processes (`redis_url`), if any.
    pub shared_cache: Option<SharedCacheConfig>,
    /// keystonemiddleware's memcached token cache (`memcached_servers`), if any.
    pub memcache: Option<MemcacheConfig>,
    /// This service's type in the catalog (`compute`, `volumev3`, ...): the `service` an
    /// application credential's access rule must name. Unset, tokens restricted by access rules
    /// are refused (`access_rules_unenforceable`), as keystonemiddleware does.
    pub service_type: Option<String>,
}

impl fmt::Debug for AuthTokenConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuthTokenConfig")
            .field("www_authenticate_uri", &self.www_authenticate_uri)
            .field("auth", &self.auth)
            .field("interface", &self.interface)
            .field("region_name", &self.region_name)
            .field("service_token_roles", &self.service_token_roles)
            .field(
                "service_token_roles_required",
                &self.service_token_roles_required,
            )
            .field("delay_auth_decision", &self.delay_auth_decision)
            .field("token_cache_time", &self.token_cache_time)
            .field("negative_cache_time", &self.negative_cache_time)
            .field("include_service_catalog", &self.include_service_catalog)
            .field("expose_failure_reason", &self.expose_failure_reason)
            .field("shared_cache", &self.shared_cache)
            .field("memcache", &self.memcache)
            .field("service_type", &self.service_type)
            .finish_non_exhaustive()
    }
}

/// keystonemiddleware's defaults for the identity calls: 3 retries of connection failures,
/// none of error statuses (a 503 from the identity service becomes a 503 at once).
fn default_http() -> HttpOptions {
    HttpOptions {
        retry: RetryPolicy {
            connect_retries: 3,
            status_retries: 0,
            ..RetryPolicy::default()
        },
        ..HttpOptions::default()
    }
}

impl AuthTokenConfig {
    /// A builder with keystonemiddleware's defaults, authenticating with `auth`.
    pub fn builder(auth: Arc<dyn AuthPlugin>) -> AuthTokenConfigBuilder {
        AuthTokenConfigBuilder {
            www_authenticate_uri: None,
            cfg: AuthTokenConfig {
                www_authenticate_uri: String::new(),
                auth,
                http: default_http(),
                interface: Interface::Internal,
                region_name: None,
                service_token_roles: vec![SERVICE_ROLE.to_string()],
                service_token_roles_required: true,
                delay_auth_decision: false,
                token_cache_time: Some(DEFAULT_TOKEN_CACHE_TIME),
                negative_cache_time: DEFAULT_NEGATIVE_CACHE_TIME,
                cache_size: DEFAULT_CACHE_SIZE,
                allow_expired_window: DEFAULT_ALLOW_EXPIRED_WINDOW,
                include_service_catalog: true,
                expose_failure_reason: false,
                diagnose_expired_tokens: true,
                validate_token_pairs: true,
                shared_cache: None,
                memcache: None,
                service_type: None,
            },
        }
    }

    /// Reads `section` (normally [`DEFAULT_SECTION`]). Every error is one line naming the file,
    /// line, section and option; secrets and the Redis URL are never echoed.
    pub fn from_ini(ini: &IniFile, section: &str) -> Result<AuthTokenConfig, ConfigError> {
        let r = ini.reader(section);
        let auth_config = AuthConfig::from_ini(ini, section)?.ok_or_else(|| {
            r.error("auth_type is not set: the middleware validates tokens as its own service user; set auth_type = password, auth_url, username, password, user_domain_name, project_name and project_domain_name")
        })?;
        let session = SessionConfig::from_ini(ini, section)?;
        let mut b = AuthTokenConfig::builder(auth_config.plugin());
        let mut http = session.http_options();
        http.retry = default_http().retry;

        if let Some(uri) = r.string("www_authenticate_uri")?.or(r.string("auth_uri")?) {
            b = b.www_authenticate_uri(uri);
        } else {
            b = b.www_authenticate_uri(auth_config.auth_url.to_string());
        }
        b = b.read_validation_options(&r, section)?;
        if let Some(t) = r.int("http_connect_timeout", 1, i64::MAX)? {
            let t = Duration::from_secs(t);
            http.connect_timeout = t;
            http.timeout = Some(t);
        }
        if let Some(n) = r.int("http_request_max_retries", 0, 100)? {
            http.retry.connect_retries = n;
        }
        b = b.http_options(http);

        if let Some(v) = r.value("enforce_token_bind") {
            let mode = r.string("enforce_token_bind")?.unwrap_or_default();
            if !matches!(mode.as_str(), "disabled" | "permissive" | "") {
                return Err(v.error(
                    section,
                    "enforce_token_bind",
                    "Baton does not check token binding; use disabled or permissive",
                ));
            }
        }
        if let Some(memcache) = read_memcache(&r, section)? {
            b = b.memcache(memcache);
        }
        if let Some(shared) = read_shared_cache(&r, section)? {
            b = b.shared_cache(shared);
        }
        if let Some(s) = ini.section(section) {
            for name in s.option_names() {
                if !is_known_option(name) {
                    tracing::warn!(
                        "[{section}] {name} is not an option of the auth_token middleware: ignored"
                    );
                }
            }
        }
        b.build().map_err(|e| match e {
            Error::Config(c) => c,
            other => r.error(other.to_string()),
        })
    }
}

/// `memcached_servers` with `memcache_security_strategy`, `memcache_secret_key` and the pool
/// options, checked as keystonemiddleware checks them (a strategy needs a secret, even without
/// servers); `None` without servers.
fn read_memcache(
    r: &SectionReader<'_>,
    section: &str,
) -> Result<Option<MemcacheConfig>, ConfigError> {
    let strategy = r
        .custom("memcache_security_strategy", |text| {
            Strategy::parse(text.trim()).ok_or_else(|| "must be None, MAC or ENCRYPT".to_string())
        })?
        .unwrap_or(Strategy::None);
    let secret = r
        .string("memcache_secret_key")?
        .filter(|s| !s.is_empty())
        .map(SecretString::new);
    if strategy != Strategy::None && secret.is_none() {
        return Err(r.missing(
            "memcache_secret_key",
            "memcache_security_strategy is set, and the keys of every memcached entry are derived from this secret",
        ));
    }
    for (option, what) in [
        ("memcache_sasl_enabled", "SASL"),
        ("memcache_tls_enabled", "TLS"),
    ] {
        if r.bool(option)? == Some(true) {
            return Err(r.error(format!(
                "option {option}: Baton does not speak {what} to memcached; reach it on a trusted network and protect the entries with memcache_security_strategy"
            )));
        }
    }
    let _ = r.bool("memcache_use_advanced_pool")?;
    let pool = read_memcache_pool(r)?;
    let servers_option = match r.value("memcached_servers") {
        Some(_) => "memcached_servers",
        None => "memcache_servers",
    };
    let servers: Vec<String> = r
        .list(servers_option)?
        .unwrap_or_default()
        .into_iter()
        .filter(|s| !s.is_empty())
        .collect();
    if servers.is_empty() {
        return Ok(None);
    }
    if let Some(v) = r.value(servers_option) {
        for s in &servers {
            server_address(s).map_err(|why| v.error(section, servers_option, why))?;
        }
    }
    if let Some(text) = r.string("memcache_security_strategy")? {
        let text = text.trim();
        if strategy != Strategy::None && text != strategy.as_str() {
            tracing::warn!(
                "[{section}] memcache_security_strategy = {text}: keystonemiddleware derives its keys from the name as written (and encrypts only with ENCRYPT in capitals), so it will not share memcached entries with Baton; write {}",
                strategy.as_str()
            );
        }
    }
    if strategy == Strategy::None {
        tracing::warn!(
            "[{section}] memcached_servers without memcache_security_strategy: token validations are stored in memcached as plain data, and whoever can write to memcached can act as any user; set memcache_security_strategy = MAC (or ENCRYPT) and memcache_secret_key"
        );
    }
    let mut cfg = MemcacheConfig::new(servers, strategy, secret);
    cfg.pool = pool;
    Ok(Some(cfg))
}

/// The `memcache_pool_*` options, with keystonemiddleware's defaults.
fn read_memcache_pool(r: &SectionReader<'_>) -> Result<PoolOptions, ConfigError> {
    let mut pool = MemcacheConfig::new(Vec::new(), Strategy::None, None).pool;
    if let Some(t) = r.seconds("memcache_pool_socket_timeout")? {
        if t.is_zero() {
            return Err(r.error("option memcache_pool_socket_timeout must be above 0"));
        }
        pool.socket_timeout = t;
    }
    if let Some(t) = r.seconds("memcache_pool_dead_retry")? {
        pool.dead_retry = t;
    }
    if let Some(n) = r.int::<usize>("memcache_pool_maxsize", 1, 10_000)? {
        pool.maxsize = n;
    }
    if let Some(t) = r.seconds("memcache_pool_unused_timeout")? {
        pool.unused_timeout = t;
    }
    if let Some(t) = r.seconds("memcache_pool_conn_get_timeout")? {
        pool.conn_get_timeout = t;
    }
    Ok(pool)
}

/// `redis_url` with its secret and timings; `None` when unset or empty (each process then
/// caches validations on its own). The URL is never echoed: it may hold a password.
fn read_shared_cache(
    r: &SectionReader<'_>,
    section: &str,
) -> Result<Option<SharedCacheConfig>, ConfigError> {
    let Some(v) = r.value("redis_url") else {
        return Ok(None);
    };
    let url = r.string("redis_url")?.unwrap_or_default();
    let hidden = |reason: &str| -> ConfigError {
        ConfigErrorKind::Value {
            origin: v.origin().clone(),
            section: section.to_string(),
            option: "redis_url".into(),
            value: "<redacted>".into(),
            reason: reason.into(),
        }
        .into()
    };
    if url.is_empty() {
        return Ok(None);
    }
    if !url.starts_with("redis://") {
        return Err(hidden(
            "must be a redis:// URL (TLS to Redis, rediss://, is not built in)",
        ));
    }
    let secret = match r.string("cache_secret_key")? {
        Some(s) => s,
        None => r.string("memcache_secret_key")?.ok_or_else(|| {
            hidden("a shared cache needs cache_secret_key: every entry is MACed with it, so that whoever can write to the cache cannot forge an identity")
        })?,
    };
    let timeout = r.seconds("redis_timeout")?.unwrap_or(DEFAULT_REDIS_TIMEOUT);
    let retry = r
        .seconds("redis_retry_interval")?
        .unwrap_or(DEFAULT_REDIS_RETRY_INTERVAL);
    Ok(Some(SharedCacheConfig {
        redis_url: url,
        secret: SecretString::new(secret),
        timeout,
        retry_interval: retry,
    }))
}

impl AuthTokenConfigBuilder {
    /// The options of how tokens are validated and cached: the identity endpoint's interface
    /// and region, service-token roles, delay_auth_decision, the caches, allow_expired_window.
    fn read_validation_options(
        mut self,
        r: &SectionReader<'_>,
        section: &str,
    ) -> Result<Self, ConfigError> {
        if let Some(v) = r.value("interface") {
            let text = r.string("interface")?.unwrap_or_default();
            let i = Interface::parse(&text)
                .ok_or_else(|| v.error(section, "interface", "use public, internal or admin"))?;
            self = self.interface(i);
        }
        self.cfg.region_name = r.string("region_name")?;
        self.cfg.service_type = r.string("service_type")?.filter(|t| !t.is_empty());
        if let Some(roles) = r.list("service_token_roles")? {
            self = self.service_token_roles(roles);
        }
        if let Some(v) = r.bool("service_token_roles_required")? {
            self = self.service_token_roles_required(v);
        }
        if let Some(v) = r.bool("delay_auth_decision")? {
            self = self.delay_auth_decision(v);
        }
        if let Some(t) = r.int::<i64>("token_cache_time", -1, i64::MAX)? {
            self = self.token_cache_time((t > 0).then(|| Duration::from_secs(t as u64)));
        }
        if let Some(t) = r.seconds("negative_cache_time")? {
            self = self.negative_cache_time(t);
        }
        if let Some(n) = r.int("token_cache_size", 1, i64::MAX)? {
            self.cfg.cache_size = n;
        }
        if let Some(t) = r.int("allow_expired_window", 0, i64::MAX)? {
            self = self.allow_expired_window(Duration::from_secs(t));
        }
        if let Some(v) = r.bool("include_service_catalog")? {
            self = self.include_service_catalog(v);
        }
        if let Some(v) = r.bool("expose_failure_reason")? {
            self = self.expose_failure_reason(v);
        }
        if let Some(v) = r.bool("diagnose_expired_tokens")? {
            self = self.diagnose_expired_tokens(v);
        }
        if let Some(v) = r.bool("validate_token_pairs")? {
            self = self.validate_token_pairs(v);
        }
        Ok(self)
    }
}

/// Options read here, keystoneauth's plugin and session options, and keystonemiddleware options
/// Baton accepts without acting on them.
fn is_known_option(name: &str) -> bool {
    const KNOWN: &[&str] = &[
        // read here
        "www_authenticate_uri",
        "auth_uri",
        "interface",
        "region_name",
        "service_token_roles",
        "service_token_roles_required",
        "delay_auth_decision",
        "token_cache_time",
        "negative_cache_time",
        "token_cache_size",
        "allow_expired_window",
        "include_service_catalog",
        "expose_failure_reason",
        "diagnose_expired_tokens",
        "validate_token_pairs",
        "service_type",
        "http_connect_timeout",
        "http_request_max_retries",
        "enforce_token_bind",
        "memcached_servers",
        "memcache_servers",
        "memcache_secret_key",
        "memcache_security_strategy",
        "redis_url",
        "cache_secret_key",
        "redis_timeout",
        "redis_retry_interval",
        // keystoneauth's loading options (its plugin and session options follow)
        "auth_type",
        "auth_section",
        // keystonemiddleware options without effect here
        "auth_version",
        "cache",
        "auth_admin_prefix",
    ];
    KNOWN.contains(&name)
        || AUTH_OPTIONS.contains(&name)
        || SESSION_OPTIONS.contains(&name)
        || name.starts_with("memcache_")
}

/// Sets the options of an [`AuthTokenConfig`]; start from [`AuthTokenConfig::builder`].
#[derive(Debug)]
pub struct AuthTokenConfigBuilder {
    www_authenticate_uri: Option<String>,
    cfg: AuthTokenConfig,
}

impl AuthTokenConfigBuilder {
    /// Sets [`AuthTokenConfig::www_authenticate_uri`] (default: the auth plugin's `auth_url`).
    pub fn www_authenticate_uri(mut self, uri: impl Into<String>) -> Self {
        self.www_authenticate_uri = Some(uri.into());
        self
    }

    /// Sets [`AuthTokenConfig::interface`].
    pub fn interface(mut self, interface: Interface) -> Self {
        self.cfg.interface = interface;
        self
    }

    /// Sets [`AuthTokenConfig::service_type`].
    pub fn service_type(mut self, service_type: impl Into<String>) -> Self {
        self.cfg.service_type = Some(service_type.into());
        self
    }

    /// Sets [`AuthTokenConfig::region_name`].
    pub fn region_name(mut self, region: impl Into<String>) -> Self {
        self.cfg.region_name = Some(region.into());
        self
    }

    /// Sets [`AuthTokenConfig::service_token_roles`].
    pub fn service_token_roles<I, S>(mut self, roles: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.cfg.service_token_roles = roles.into_iter().map(Into::into).collect();
        self
    }

    /// Sets [`AuthTokenConfig::service_token_roles_required`].
    pub fn service_token_roles_required(mut self, yes: bool) -> Self {
        self.cfg.service_token_roles_required = yes;
        self
    }

    /// Sets [`AuthTokenConfig::delay_auth_decision`].
    pub fn delay_auth_decision(mut self, yes: bool) -> Self {
        self.cfg.delay_auth_decision = yes;
        self
    }

    /// `None` disables caching (keystonemiddleware's `token_cache_time = -1`).
    pub fn token_cache_time(mut self, t: Option<Duration>) -> Self {
        self.cfg.token_cache_time = t.filter(|t| !t.is_zero());
        self
    }

    /// Sets [`AuthTokenConfig::negative_cache_time`]; zero disables the negative cache.
    pub fn negative_cache_time(mut self, t: Duration) -> Self {
        self.cfg.negative_cache_time = t;
        self
    }

    /// Sets [`AuthTokenConfig::cache_size`] (at least 1).
    pub fn cache_size(mut self, entries: u64) -> Self {
        self.cfg.cache_size = entries.max(1);
        self
    }

    /// Sets [`AuthTokenConfig::allow_expired_window`].
    pub fn allow_expired_window(mut self, t: Duration) -> Self {
        self.cfg.allow_expired_window = t;
        self
    }

    /// Sets [`AuthTokenConfig::include_service_catalog`].
    pub fn include_service_catalog(mut self, yes: bool) -> Self {
        self.cfg.include_service_catalog = yes;
        self
    }

    /// Sets [`AuthTokenConfig::expose_failure_reason`].
    pub fn expose_failure_reason(mut self, yes: bool) -> Self {
        self.cfg.expose_failure_reason = yes;
        self
    }

    /// Sets [`AuthTokenConfig::diagnose_expired_tokens`].
    pub fn diagnose_expired_tokens(mut self, yes: bool) -> Self {
        self.cfg.diagnose_expired_tokens = yes;
        self
    }

    /// Sets [`AuthTokenConfig::validate_token_pairs`].
    pub fn validate_token_pairs(mut self, yes: bool) -> Self {
        self.cfg.validate_token_pairs = yes;
        self
    }

    /// Sets the transport of the identity calls (timeouts, TLS, retries).
    pub fn http_options(mut self, http: HttpOptions) -> Self {
        self.cfg.http = http;
        self
    }

    /// Retries of an identity call that could not connect (`http_request_max_retries`).
    pub fn http_request_max_retries(mut self, n: u32) -> Self {
        self.cfg.http.retry.connect_retries = n;
        self
    }

    /// Connect and total timeout of each identity call (`http_connect_timeout`).
    pub fn http_connect_timeout(mut self, t: Duration) -> Self {
        self.cfg.http.connect_timeout = t;
        self.cfg.http.timeout = Some(t);
        self
    }

    /// Sets [`AuthTokenConfig::shared_cache`].
    pub fn shared_cache(mut self, shared: SharedCacheConfig) -> Self {
        self.cfg.shared_cache = Some(shared);
        self
    }

    /// Sets [`AuthTokenConfig::memcache`].
    pub fn memcache(mut self, memcache: MemcacheConfig) -> Self {
        self.cfg.memcache = Some(memcache);
        self
    }

    /// keystonemiddleware's memcached token cache on `servers` with `strategy` (`secret` is
    /// `memcache_secret_key`) and the default pool options.
    pub fn memcached<I, S>(
        self,
        servers: I,
        strategy: Strategy,
        secret: Option<SecretString>,
    ) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let servers = servers.into_iter().map(Into::into).collect();
        self.memcache(MemcacheConfig::new(servers, strategy, secret))
    }

    /// A shared Redis cache with the default timeout (0.25 s) and retry interval (30 s).
    pub fn redis(self, url: impl Into<String>, secret: impl Into<SecretString>) -> Self {
        self.shared_cache(SharedCacheConfig {
            redis_url: url.into(),
            secret: secret.into(),
            timeout: DEFAULT_REDIS_TIMEOUT,
            retry_interval: DEFAULT_REDIS_RETRY_INTERVAL,
        })
    }

    /// Checks the options: `www_authenticate_uri` (from the plugin's `auth_url` when unset) must
    /// fit in a header, and a shared cache needs a secret and a timeout.
    pub fn build(mut self) -> Result<AuthTokenConfig, Error> {
        self.cfg.www_authenticate_uri = match self.www_authenticate_uri.take() {
            Some(u) => u,
            None => self
                .cfg
                .auth
                .auth_url()
                .map(|u| u.to_string())
                .ok_or_else(|| {
                    Error::Invalid(
                        "www_authenticate_uri is not set and the auth plugin has no auth_url"
                            .into(),
                    )
                })?,
        };
        if self.cfg.www_authenticate_uri.contains('"')
            || self.cfg.www_authenticate_uri.chars().any(char::is_control)
        {
            return Err(Error::Invalid(
                "www_authenticate_uri must not contain quotes or control characters".into(),
            ));
        }
        if let Some(m) = &self.cfg.memcache {
            check_memcache(m)?;
        }
        if let Some(shared) = &self.cfg.shared_cache {
            if shared.secret.expose().is_empty() {
                return Err(Error::Invalid(
                    "the shared cache needs a non-empty cache_secret_key".into(),
                ));
            }
            if shared.secret.expose().len() < 16 {
                tracing::warn!(
                    "cache_secret_key is shorter than 16 bytes: use a long random secret"
                );
            }
            if shared.timeout.is_zero() {
                return Err(Error::Invalid("redis_timeout must be above 0".into()));
            }
        }
        Ok(self.cfg)
    }
}

/// A memcached configuration Baton can run with: servers it can parse, a secret when a
/// strategy is set, a timeout above zero.
fn check_memcache(m: &MemcacheConfig) -> Result<(), Error> {
    if m.servers.is_empty() {
        return Err(Error::Invalid("memcached_servers lists no server".into()));
    }
    for s in &m.servers {
        server_address(s).map_err(|why| Error::Invalid(format!("memcached_servers: {why}")))?;
    }
    if m.strategy != Strategy::None && m.secret.as_ref().is_none_or(|s| s.expose().is_empty()) {
        return Err(Error::Invalid(
            "memcache_secret_key must be set when memcache_security_strategy is".into(),
        ));
    }
    if m.pool.socket_timeout.is_zero() {
        return Err(Error::Invalid(
            "memcache_pool_socket_timeout must be above 0".into(),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<AuthTokenConfig, ConfigError> {
        let ini = IniFile::parse(text, "cinder.conf").expect("parses");
        AuthTokenConfig::from_ini(&ini, DEFAULT_SECTION)
    }

    const AUTH: &str = "[keystone_authtoken]\nauth_type = password\nauth_url = http://ks:5000/v3\nusername = cinder\npassword = S3cret-pw\nuser_domain_name = Default\nproject_name = service\nproject_domain_name = Default\n";

    #[test]
    fn defaults_are_keystonemiddleware_13s() {
        let c = parse(AUTH).unwrap();
        assert_eq!(c.www_authenticate_uri, "http://ks:5000/v3");
        assert_eq!(c.interface, Interface::Internal);
        assert_eq!(c.service_token_roles, ["service"]);
        assert!(c.service_token_roles_required);
        assert!(!c.delay_auth_decision);
        assert_eq!(c.token_cache_time, Some(Duration::from_secs(300)));
        assert!(c.include_service_catalog);
        assert!(!c.expose_failure_reason);
        assert_eq!(c.http.retry.connect_retries, 3);
        assert!(c.shared_cache.is_none());
    }

    #[test]
    fn options_are_read() {
        let c = parse(&format!(
            "{AUTH}www_authenticate_uri = https://pub:5000\ninterface = public\nregion_name = R2\nservice_token_roles = service, admin\nservice_token_roles_required = false\ndelay_auth_decision = true\ntoken_cache_time = -1\ninclude_service_catalog = false\nhttp_connect_timeout = 4\nhttp_request_max_retries = 1\nexpose_failure_reason = true\nmemcached_servers = m1:11211\nmemcache_secret_key = 0123456789abcdef\nredis_url = redis://:pw@127.0.0.1:6379/2\nredis_timeout = 0.1\n"
        ))
        .unwrap();
        assert_eq!(c.www_authenticate_uri, "https://pub:5000");
        assert_eq!(c.interface, Interface::Public);
        assert_eq!(c.region_name.as_deref(), Some("R2"));
        assert_eq!(c.service_token_roles, ["service", "admin"]);
        assert!(!c.service_token_roles_required);
        assert!(c.delay_auth_decision);
        assert_eq!(c.token_cache_time, None);
        assert!(!c.include_service_catalog);
        assert_eq!(c.http.connect_timeout, Duration::from_secs(4));
        assert_eq!(c.http.retry.connect_retries, 1);
        let shared = c.shared_cache.as_ref().unwrap();
        assert_eq!(shared.secret.expose(), "0123456789abcdef");
        assert_eq!(shared.timeout, Duration::from_millis(100));
        assert!(!format!("{c:?}").contains(":pw@"));
    }

    #[test]
    fn memcache_options_are_keystonemiddlewares() {
        let c = parse(&format!(
            "{AUTH}memcached_servers = m1:11211, inet6:[::1]:11311\nmemcache_security_strategy = encrypt\nmemcache_secret_key = k3y-0123456789abcdef\nmemcache_pool_socket_timeout = 1\nmemcache_pool_maxsize = 4\nmemcache_pool_dead_retry = 30\nmemcache_use_advanced_pool = false\n"
        ))
        .unwrap();
        let m = c.memcache.as_ref().expect("memcache");
        assert_eq!(m.servers, ["m1:11211", "inet6:[::1]:11311"]);
        assert_eq!(m.strategy, Strategy::Encrypt);
        assert_eq!(m.pool.socket_timeout, Duration::from_secs(1));
        assert_eq!(m.pool.maxsize, 4);
        assert_eq!(m.pool.dead_retry, Duration::from_secs(30));
        assert!(!format!("{c:?}").contains("k3y-0123456789abcdef"));
        // The deprecated name keystonemiddleware still reads.
        let c = parse(&format!("{AUTH}memcache_servers = m2\n")).unwrap();
        assert_eq!(c.memcache.unwrap().strategy, Strategy::None);
        assert!(parse(AUTH).unwrap().memcache.is_none());
    }

    #[test]
    fn memcache_errors_name_section_and_option() {
        // keystonemiddleware refuses a strategy without a secret, servers or not.
        for text in [
            format!("{AUTH}memcached_servers = m1:11211\nmemcache_security_strategy = MAC\n"),
            format!("{AUTH}memcache_security_strategy = ENCRYPT\nmemcache_secret_key =\n"),
        ] {
            let msg = parse(&text).unwrap_err().to_string();
            assert!(!msg.contains('\n'), "{msg}");
            assert!(
                msg.contains("[keystone_authtoken]") && msg.contains("memcache_secret_key"),
                "{msg}"
            );
        }
        let cases = [
            (
                "memcache_security_strategy = AES\n",
                "memcache_security_strategy",
            ),
            ("memcached_servers = m1:x\n", "memcached_servers"),
            (
                "memcached_servers = m1\nmemcache_sasl_enabled = true\n",
                "memcache_sasl_enabled",
            ),
            (
                "memcached_servers = m1\nmemcache_tls_enabled = true\n",
                "memcache_tls_enabled",
            ),
            (
                "memcache_pool_socket_timeout = 0\n",
                "memcache_pool_socket_timeout",
            ),
            ("memcache_pool_maxsize = 0\n", "memcache_pool_maxsize"),
        ];
        for (line, option) in cases {
            let msg = parse(&format!("{AUTH}{line}")).unwrap_err().to_string();
            assert!(msg.contains(option) && !msg.contains('\n'), "{line}: {msg}");
        }
    }

    #[test]
    fn errors_are_one_line_and_hide_secrets() {
        let e = parse("[keystone_authtoken]\nwww_authenticate_uri = http://x\n").unwrap_err();
        assert!(e.to_string().contains("auth_type is not set"), "{e}");
        let e = parse(&format!("{AUTH}redis_url = redis://:hunter2@r:6379\n")).unwrap_err();
        let msg = e.to_string();
        assert!(
            msg.contains("cache_secret_key") && !msg.contains("hunter2"),
            "{msg}"
        );
        assert!(!msg.contains('\n'));
        let e = parse(&format!("{AUTH}enforce_token_bind = required\n")).unwrap_err();
        assert!(e.to_string().contains("enforce_token_bind"), "{e}");
        let e = parse(&format!("{AUTH}token_cache_time = soon\n")).unwrap_err();
        assert!(e.to_string().starts_with("cinder.conf:"), "{e}");
    }
}
