//! The typed keystone.conf of Baton's identity server.
//!
//! Option names and defaults are Keystone's (`keystone/conf/*.py`), plus
//! those of the oslo libraries Keystone registers (`[database]` from oslo.db,
//! `[oslo_middleware]`, `[oslo_policy]`), plus Baton's own `[baton]` section.
//!
//! Every option in the file must be either one Baton reads, or one on the
//! documented allow-list of real Keystone/oslo options that Baton accepts and
//! ignores (with a warning). Anything else, including an unknown section, is
//! an error, so that `[token] expiraton = 7200` does not silently keep the
//! default. See [`IGNORED_SECTIONS`], [`IGNORED_OPTIONS`] and
//! [`IGNORED_OPTION_PREFIXES`].

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use crate::error::{ConfigError, ConfigErrorKind, Origin};
use crate::ini::{normalize_section, IniFile, DEFAULT_SECTION};
use crate::reader::SectionReader;

/// Keystone's default `[auth] methods` (keystone 30: seven entries, `ec2credential` last). The
/// order fixes each method's bit in Fernet payloads, so it must match the Python nodes'.
pub const DEFAULT_AUTH_METHODS: &[&str] = &[
    "external",
    "password",
    "token",
    "oauth1",
    "mapped",
    "application_credential",
    "ec2credential",
];

/// oslo.policy's default `[oslo_policy] policy_file`.
const DEFAULT_POLICY_FILE: &str = "policy.yaml";

/// Options Baton reads, per section.
const KNOWN_OPTIONS: &[(&str, &[&str])] = &[
    (
        DEFAULT_SECTION,
        &[
            "public_endpoint",
            "insecure_debug",
            "debug",
            "max_token_size",
            "list_limit",
            "max_param_size",
            "max_project_tree_depth",
            "strict_password_check",
            "transport_url",
            "notification_format",
            "notification_opt_out",
            "default_publisher_id",
            "control_exchange",
        ],
    ),
    (
        "oslo_messaging_notifications",
        &["driver", "transport_url", "topics"],
    ),
    (
        "oslo_messaging_rabbit",
        &["ssl", "ssl_ca_file", "ssl_cert_file", "ssl_key_file"],
    ),
    (
        "database",
        &["connection", "max_pool_size", "connection_recycle_time"],
    ),
    (
        "token",
        &[
            "expiration",
            "allow_expired_window",
            "provider",
            "caching",
            "cache_time",
            "allow_rescope_scoped_token",
            "revoke_by_id",
        ],
    ),
    (
        "fernet_tokens",
        &[
            "key_repository",
            "max_active_keys",
            "key_distribution",
            "key_encryption_key_file",
        ],
    ),
    ("fernet_receipts", &["key_repository", "max_active_keys"]),
    (
        "credential",
        &[
            "key_repository",
            "max_active_keys",
            "key_distribution",
            "auth_ttl",
            "user_limit",
        ],
    ),
    (
        "identity",
        &[
            "password_hash_algorithm",
            "password_hash_rounds",
            "max_password_length",
            "default_domain_id",
            "driver",
            "list_limit",
        ],
    ),
    ("auth", &["methods"]),
    ("catalog", &["list_limit"]),
    ("policy", &["list_limit"]),
    ("unified_limit", &["enforcement_model", "list_limit"]),
    ("endpoint_filter", &["return_all_endpoints_if_no_filter"]),
    (
        "resource",
        &[
            "admin_project_name",
            "admin_project_domain_name",
            "list_limit",
        ],
    ),
    ("role", &["list_limit"]),
    ("revoke", &["expiration_buffer"]),
    ("application_credential", &["user_limit"]),
    ("trust", &["max_redelegation_count"]),
    (
        "oauth1",
        &["request_token_duration", "access_token_duration"],
    ),
    (
        "token_pairs",
        &["expired_windows", "service_user_domain_name"],
    ),
    (
        "continuation",
        &[
            "senders",
            "receivers",
            "service_user_domain_name",
            "token_lifetime",
            "actor_roles",
        ],
    ),
    (
        "security_compliance",
        &[
            "lockout_failure_attempts",
            "lockout_duration",
            "password_regex",
            "password_regex_description",
            "password_expires_days",
            "change_password_upon_first_use",
            "unique_last_password_count",
            "minimum_password_age",
            "disable_user_account_days_inactive",
            "report_invalid_password_hash",
            "invalid_password_hash_secret_key",
            "invalid_password_hash_function",
            "invalid_password_hash_max_chars",
        ],
    ),
    ("oslo_middleware", &["max_request_body_size"]),
    (
        "oslo_policy",
        &["policy_file", "enforce_new_defaults", "enforce_scope"],
    ),
    (
        "baton",
        &[
            "bind",
            "data_dir",
            "validation_cache_bytes",
            "validation_cache_ttl",
            "snapshot_cache_bytes",
            "worker_threads",
            "max_connections",
            "header_timeout",
            "body_timeout",
            "change_poll_interval_ms",
            "login_failures_per_address",
            "login_failures_per_user_name",
            "login_failure_window",
            "password_hash_workers",
            "password_hash_nice",
            "password_hash_max_wait",
            "tls_cert_file",
            "tls_key_file",
            "notification_buffer",
        ],
    ),
];

/// Real Keystone/oslo options in the sections above that Baton accepts in a
/// keystone.conf and ignores (a warning is logged for each).
pub const IGNORED_OPTIONS: &[(&str, &[&str])] = &[
    // The `allow_insecure_*` switches (their default is the secure side, which is what Baton
    // does) weaken nothing when ignored.
    (
        "security_compliance",
        &[
            "allow_insecure_admin_trust_cross_project_credentials_access",
            "allow_insecure_application_credential_trust_escalation",
        ],
    ),
    // Keystone has only the sql driver and the fernet provider; Baton has no cache layer.
    (
        "credential",
        &["driver", "provider", "caching", "cache_time"],
    ),
    (
        DEFAULT_SECTION,
        &[
            // keystone/conf/default.py
            "admin_token",
            "max_db_limit",
            // oslo.log (the logging_* family is matched by prefix)
            "verbose",
            "log_config_append",
            "log_date_format",
            "log_file",
            "log_dir",
            "watch_log_file",
            "use_syslog",
            "use_journal",
            "syslog_log_facility",
            "use_json",
            "use_stderr",
            "use_eventlog",
            "log_color",
            "log_rotate_interval",
            "log_rotate_interval_type",
            "max_logfile_count",
            "max_logfile_size_mb",
            "log_rotation_type",
            "default_log_levels",
            "publish_errors",
            "instance_format",
            "instance_uuid_format",
            "rate_limit_interval",
            "rate_limit_burst",
            "rate_limit_except_level",
            "fatal_deprecations",
            // oslo.messaging
            "rpc_response_timeout",
            "executor_thread_pool_size",
            "rpc_conn_pool_size",
            "conn_pool_min_size",
            "conn_pool_ttl",
        ],
    ),
    (
        "database",
        &[
            // oslo_db/options.py, plus a few deprecated names still seen
            "sqlite_synchronous",
            "backend",
            "slave_connection",
            "asyncio_connection",
            "asyncio_slave_connection",
            "synchronous_reader",
            "mysql_sql_mode",
            "mysql_wsrep_sync_wait",
            "mysql_enable_ndb",
            "max_retries",
            "retry_interval",
            "max_overflow",
            "connection_debug",
            "connection_trace",
            "pool_timeout",
            "use_db_reconnect",
            "db_retry_interval",
            "db_inc_retry_interval",
            "db_max_retry_interval",
            "db_max_retries",
            "connection_parameters",
            "idle_timeout",
            "min_pool_size",
        ],
    ),
    (
        "token",
        &[
            "cache_on_issue",
            // removed from Keystone but common in older files
            "infer_roles",
            "hash_algorithm",
            "bind",
            "enforce_token_bind",
            "driver",
        ],
    ),
    (
        "identity",
        &[
            "domain_specific_drivers_enabled",
            "domain_configurations_from_database",
            "domain_config_dir",
            "caching",
            "cache_time",
            "salt_bytesize",
            "scrypt_block_size",
            "scrypt_parallelism",
        ],
    ),
    ("role", &["driver", "caching", "cache_time"]),
    ("oauth1", &["driver"]),
    (
        "resource",
        &[
            "driver",
            "caching",
            "cache_time",
            "project_name_url_safe",
            "domain_name_url_safe",
        ],
    ),
    ("revoke", &["driver", "caching", "cache_time"]),
    (
        "application_credential",
        &["driver", "caching", "cache_time"],
    ),
    // `allow_redelegation` is read by no Keystone 30 code (each trust says it); Baton serves
    // trusts from SQL only.
    ("trust", &["allow_redelegation", "driver"]),
    ("catalog", &["driver", "caching", "cache_time"]),
    ("unified_limit", &["driver", "caching", "cache_time"]),
    ("endpoint_filter", &["driver"]),
    ("policy", &["driver"]),
    (
        "oslo_middleware",
        &[
            "enable_proxy_headers_parsing",
            "http_basic_auth_user_file",
            "secure_proxy_ssl_header",
        ],
    ),
    (
        "oslo_policy",
        &[
            "policy_default_rule",
            "policy_dirs",
            "remote_content_type",
            "remote_ssl_verify_server_crt",
            "remote_ssl_ca_crt_file",
            "remote_ssl_client_crt_file",
            "remote_ssl_client_key_file",
            "remote_timeout",
        ],
    ),
    // Baton's own, from before the validation cache was bounded in bytes
    // (`validation_cache_bytes` replaced it); old configurations keep working.
    ("baton", &["validation_cache_size"]),
];

/// Option-name prefixes ignored per section (oslo.log's `logging_*` formats).
pub const IGNORED_OPTION_PREFIXES: &[(&str, &str)] = &[
    (DEFAULT_SECTION, "logging_"),
    // Of oslo.messaging's rabbit driver Baton reads the TLS options; the others (queues,
    // heartbeats, retries) are ignored, whatever their name.
    ("oslo_messaging_rabbit", ""),
];

/// Whole sections of real keystone.conf files that Baton ignores. In addition,
/// `[auth]` may name a driver per method (`password = ...`) and a section named
/// after a configured auth method (e.g. `[openid]`) is ignored too.
pub const IGNORED_SECTIONS: &[&str] = &[
    // Keystone groups Baton does not implement or configures differently
    "api",
    "assignment",
    "domain_config",
    "endpoint_policy",
    "eventlet_server",
    "federation",
    "identity_mapping",
    "jwt_tokens",
    "ldap",
    "oauth2",
    "receipt",
    "saml",
    "shadow_users",
    "tokenless_auth",
    "totp",
    "wsgi",
    "paste_deploy",
    // oslo libraries
    "cache",
    "memcache",
    "cors",
    "healthcheck",
    "profiler",
    "oslo_concurrency",
    "oslo_messaging_amqp",
    "oslo_messaging_kafka",
    "oslo_reports",
];

/// The `[DEFAULT]` options.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DefaultOptions {
    /// Base URL advertised in links (`public_endpoint`); must be http(s).
    pub public_endpoint: Option<String>,
    /// Put internal details into error responses (`insecure_debug`).
    pub insecure_debug: bool,
    /// Debug logging (`debug`, from oslo.log).
    pub debug: bool,
    /// Token length above which Keystone logs a notice (`max_token_size`).
    pub max_token_size: u32,
    /// Global cap on collection sizes (`list_limit`).
    pub list_limit: Option<u32>,
    /// Longest accepted ID/name parameter (`max_param_size`).
    pub max_param_size: u32,
    /// Deepest allowed project hierarchy (`max_project_tree_depth`).
    pub max_project_tree_depth: u32,
    /// Reject over-long passwords instead of truncating (`strict_password_check`).
    pub strict_password_check: bool,
}

/// The `[database]` options (oslo.db names). `None` leaves the store's defaults.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DatabaseOptions {
    /// SQLAlchemy-style URL, e.g. `mysql+pymysql://user:pw@host/keystone`,
    /// passed on unparsed.
    pub connection: Option<String>,
    /// Pool size (`max_pool_size`; oslo.db's default is 5).
    pub max_pool_size: Option<u32>,
    /// Seconds before a pooled connection is replaced
    /// (`connection_recycle_time`; oslo.db's default is 3600).
    pub connection_recycle_time: Option<u32>,
}

/// The `[token]` options. `provider` must be `fernet` and is not stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenOptions {
    /// Token lifetime in seconds (`expiration`).
    pub expiration: u32,
    /// Seconds after expiry a token may still be validated with
    /// `allow_expired` (`allow_expired_window`).
    pub allow_expired_window: u32,
    /// Cache token validation (`caching`).
    pub caching: bool,
    /// Cache lifetime in seconds (`cache_time`); `None` uses the global one.
    pub cache_time: Option<u32>,
    /// Allow a scoped token to be exchanged for another scope
    /// (`allow_rescope_scoped_token`).
    pub allow_rescope_scoped_token: bool,
    /// Revoke tokens by ID (`revoke_by_id`).
    pub revoke_by_id: bool,
}

/// Where a node's Fernet keys come from (`key_distribution`, a Baton option).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum KeyDistribution {
    /// `filesystem` (the default, Keystone's way): each node reads its own `key_repository`,
    /// which operators keep identical on every node.
    #[default]
    Filesystem,
    /// `database`: the key set lives in the shared database, sealed with
    /// `[fernet_tokens] key_encryption_key_file`; every node loads it from there and mirrors
    /// it into its `key_repository` for tools and Keystone nodes.
    Database,
}

impl KeyDistribution {
    /// The keystone.conf spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            KeyDistribution::Filesystem => "filesystem",
            KeyDistribution::Database => "database",
        }
    }
}

/// `[fernet_tokens]` and `[fernet_receipts]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FernetOptions {
    /// Directory of numbered key files (`key_repository`).
    pub key_repository: PathBuf,
    /// Number of keys kept by rotation (`max_active_keys`, at least 1).
    pub max_active_keys: u32,
    /// `filesystem` or `database` (`key_distribution`; `[fernet_tokens]` only).
    pub key_distribution: KeyDistribution,
    /// The key that seals the keys kept in the database (`key_encryption_key_file`,
    /// `[fernet_tokens]` only; also seals the credential keys when `[credential]
    /// key_distribution = database`): a Fernet key, mode 0600, the same on every node.
    pub key_encryption_key_file: Option<PathBuf>,
}

/// `[credential]`: the Fernet keys that encrypt credential blobs, and EC2 signing limits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CredentialOptions {
    /// Directory of numbered key files (`key_repository`); not the token repository.
    pub key_repository: PathBuf,
    /// Keys kept by `credential_rotate`. Keystone has no such option and always keeps 3;
    /// Baton reads it (at least 3, default 3) so that a rotation never purges the key that
    /// rows not yet migrated are encrypted with.
    pub max_active_keys: u32,
    /// `filesystem` or `database` (`key_distribution`, Baton's); `database` seals the set with
    /// `[fernet_tokens] key_encryption_key_file`.
    pub key_distribution: KeyDistribution,
    /// Minutes a signed EC2 request stays acceptable after its timestamp (`auth_ttl`).
    pub auth_ttl: u32,
    /// Most credentials one user may own (`user_limit`); -1 for no limit.
    pub user_limit: i64,
}

/// Keystone's default credential key repository.
pub const DEFAULT_CREDENTIAL_KEY_REPOSITORY: &str = "/etc/keystone/credential-keys/";

impl Default for CredentialOptions {
    fn default() -> Self {
        CredentialOptions {
            key_repository: PathBuf::from(DEFAULT_CREDENTIAL_KEY_REPOSITORY),
            max_active_keys: 3,
            key_distribution: KeyDistribution::Filesystem,
            auth_ttl: 15,
            user_limit: -1,
        }
    }
}

/// Password hashing algorithms Keystone offers
/// (`[identity] password_hash_algorithm`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PasswordHashAlgorithm {
    /// `bcrypt` (the default).
    Bcrypt,
    /// `bcrypt_sha256`.
    BcryptSha256,
    /// `scrypt`.
    Scrypt,
    /// `pbkdf2_sha512`.
    Pbkdf2Sha512,
}

impl PasswordHashAlgorithm {
    /// All variants with their keystone.conf spelling.
    pub const ALL: &'static [(PasswordHashAlgorithm, &'static str)] = &[
        (PasswordHashAlgorithm::Bcrypt, "bcrypt"),
        (PasswordHashAlgorithm::BcryptSha256, "bcrypt_sha256"),
        (PasswordHashAlgorithm::Scrypt, "scrypt"),
        (PasswordHashAlgorithm::Pbkdf2Sha512, "pbkdf2_sha512"),
    ];

    /// The keystone.conf spelling.
    pub fn as_str(self) -> &'static str {
        Self::ALL
            .iter()
            .find(|(alg, _)| *alg == self)
            .map_or("bcrypt", |(_, name)| name)
    }
}

/// The `[identity]` options. `driver` must be `sql` and is not stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdentityOptions {
    /// Hash for new passwords (`password_hash_algorithm`).
    pub password_hash_algorithm: PasswordHashAlgorithm,
    /// Work factor (`password_hash_rounds`); `None` uses the algorithm's default.
    pub password_hash_rounds: Option<u32>,
    /// Longest accepted password (`max_password_length`, at most 4096).
    pub max_password_length: u32,
    /// ID of the domain used by v2-style requests (`default_domain_id`).
    pub default_domain_id: String,
    /// Largest page of users and groups (`list_limit`); `None` falls back to
    /// `[DEFAULT] list_limit`.
    pub list_limit: Option<u32>,
}

/// The `[auth]` options.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthOptions {
    /// Enabled authentication methods in order (`methods`); no duplicates.
    pub methods: Vec<String>,
}

/// The `[resource]` options.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ResourceOptions {
    /// Name of the cloud admin project (`admin_project_name`).
    pub admin_project_name: Option<String>,
    /// Domain of the cloud admin project (`admin_project_domain_name`).
    pub admin_project_domain_name: Option<String>,
    /// Largest page of projects and domains (`list_limit`); `None` falls back to
    /// `[DEFAULT] list_limit`.
    pub list_limit: Option<u32>,
}

/// The `[role]` options. `driver` is always Baton's SQL store and is not stored.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RoleOptions {
    /// Largest page of roles (`list_limit`); `None` falls back to `[DEFAULT] list_limit`.
    pub list_limit: Option<u32>,
}

/// The `[catalog]` options. `driver` is always Baton's SQL catalog and is not stored.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CatalogOptions {
    /// Largest page of services, endpoints and regions (`list_limit`); `None` falls back to
    /// `[DEFAULT] list_limit`.
    pub list_limit: Option<u32>,
}

/// The `[policy]` options (the `/v3/policies` API). `driver` is always Baton's SQL store and is
/// not stored.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PolicyApiOptions {
    /// Largest page of policies (`list_limit`); `None` falls back to `[DEFAULT] list_limit`.
    pub list_limit: Option<u32>,
}

/// The `[oauth1]` options. `driver` is always Baton's SQL store and is not stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OAuth1Options {
    /// Seconds a request token may wait to be authorized and exchanged; 0: forever
    /// (`request_token_duration`, default 28800).
    pub request_token_duration: u32,
    /// Seconds an access token may be used to get tokens; 0: forever
    /// (`access_token_duration`, default 86400).
    pub access_token_duration: u32,
}

impl Default for OAuth1Options {
    fn default() -> Self {
        OAuth1Options {
            request_token_duration: 28_800,
            access_token_duration: 86_400,
        }
    }
}

/// The `[endpoint_filter]` options. `driver` is always Baton's SQL catalog and is not stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndpointFilterOptions {
    /// A token of a project without endpoint associations (or of no project) shows the whole
    /// catalog; `false`: none (`return_all_endpoints_if_no_filter`, default true).
    pub return_all_endpoints_if_no_filter: bool,
}

impl Default for EndpointFilterOptions {
    fn default() -> Self {
        EndpointFilterOptions {
            return_all_endpoints_if_no_filter: true,
        }
    }
}

/// `[unified_limit] enforcement_model`: how limits relate along the project tree.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum EnforcementModel {
    /// `flat`: each project's limit stands alone.
    #[default]
    Flat,
    /// `strict_two_level`: domain limits bound their projects' limits, and projects are at most
    /// two levels deep.
    StrictTwoLevel,
}

impl EnforcementModel {
    /// The name Keystone shows at `/v3/limits/model`.
    pub fn name(self) -> &'static str {
        match self {
            EnforcementModel::Flat => "flat",
            EnforcementModel::StrictTwoLevel => "strict_two_level",
        }
    }
}

/// The `[unified_limit]` options. `driver` is always Baton's SQL store and is not stored.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UnifiedLimitOptions {
    /// `enforcement_model`.
    pub enforcement_model: EnforcementModel,
    /// Largest page of limits and registered limits (`list_limit`); `None` falls back to
    /// `[DEFAULT] list_limit`.
    pub list_limit: Option<u32>,
}

/// The `[application_credential]` options.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ApplicationCredentialOptions {
    /// How many application credentials a user may hold (`user_limit`); `None` for Keystone's
    /// -1, no limit.
    pub user_limit: Option<u32>,
}

/// The `[revoke]` options.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RevokeOptions {
    /// Seconds revocation events outlive token expiry (`expiration_buffer`).
    pub expiration_buffer: u32,
}

/// The `[trust]` options.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrustOptions {
    /// How long a chain of redelegated trusts may be (`max_redelegation_count`).
    pub max_redelegation_count: u32,
}

/// `[token_pairs]` (Baton's own): how long an expired user token is accepted when a given
/// sender's service token comes with it to a given receiver, for receivers that validate the
/// pair in one call (`GET /v3/baton/token_pairs/validate`; `GET /v3/auth/tokens?allow_expired`
/// keeps `[token] allow_expired_window`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenPairOptions {
    /// `sender/receiver:seconds` rules, service user names or `*`; the first match wins, and
    /// no match means `[token] allow_expired_window` (`expired_windows = nova/cinder:86400,
    /// */*:0`).
    pub expired_windows: Vec<(String, String, u32)>,
    /// The domain of the users the rules name (`service_user_domain_name`, default
    /// `Default`); users of other domains match only `*`.
    pub service_user_domain_name: String,
}

impl Default for TokenPairOptions {
    /// No rules; service users in `Default`.
    fn default() -> Self {
        TokenPairOptions {
            expired_windows: Vec::new(),
            service_user_domain_name: "Default".to_owned(),
        }
    }
}

impl TokenPairOptions {
    /// The window of the first rule matching `sender` and `receiver` (service user names,
    /// `None` for users outside the service users' domain).
    pub fn expired_window(&self, sender: Option<&str>, receiver: Option<&str>) -> Option<u32> {
        let matches = |rule: &str, name: Option<&str>| rule == "*" || Some(rule) == name;
        self.expired_windows
            .iter()
            .find(|(s, r, _)| matches(s, sender) && matches(r, receiver))
            .map(|(_, _, w)| *w)
    }
}

/// `[continuation]` (Baton's own): which service users may exchange a user's token for an
/// operation-bound continuation token, for how long an operation may run, and which service
/// users receive them. Off (no senders) by default.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContinuationOptions {
    /// Service user name -> longest operation, in seconds (`senders = nova:86400,
    /// cinder:3600`). Only these users may ask for continuation tokens.
    pub senders: Vec<(String, u32)>,
    /// Service type -> the service user name that validates for it (`receivers =
    /// volume:cinder, image:glance`). An audience names service types from this map.
    pub receivers: Vec<(String, String)>,
    /// The domain of every user named in `senders` and `receivers`
    /// (`service_user_domain_name`, default `Default`).
    pub service_user_domain_name: String,
    /// Seconds one continuation token lives before it must be renewed (`token_lifetime`,
    /// default 900).
    pub token_lifetime: u32,
    /// The sender's token must hold one of these roles (`actor_roles`, default `service`).
    pub actor_roles: Vec<String>,
}

impl Default for ContinuationOptions {
    /// Off: no senders, no receivers; 900 s tokens; role `service`; domain `Default`.
    fn default() -> Self {
        ContinuationOptions {
            senders: Vec::new(),
            receivers: Vec::new(),
            service_user_domain_name: "Default".to_owned(),
            token_lifetime: 900,
            actor_roles: vec!["service".to_owned()],
        }
    }
}

impl ContinuationOptions {
    /// Whether any service user may ask for continuation tokens.
    pub fn enabled(&self) -> bool {
        !self.senders.is_empty()
    }

    /// The longest operation `user_name` may run, if it is a sender.
    pub fn sender_limit(&self, user_name: &str) -> Option<u32> {
        self.senders
            .iter()
            .find(|(n, _)| n == user_name)
            .map(|(_, s)| *s)
    }

    /// The service user that receives for `service_type`.
    pub fn receiver(&self, service_type: &str) -> Option<&str> {
        self.receivers
            .iter()
            .find(|(t, _)| t == service_type)
            .map(|(_, u)| u.as_str())
    }
}

/// The `[security_compliance]` options Baton enforces (the others are refused unless at
/// Keystone's default).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecurityComplianceOptions {
    /// Failed password logins in a row that lock a user out (`lockout_failure_attempts`);
    /// `None`, Keystone's default, never locks.
    pub lockout_failure_attempts: Option<u32>,
    /// Seconds a lockout lasts from the last failure (`lockout_duration`, default 1800).
    pub lockout_duration: u32,
    /// A Python regular expression every new password must match from its start
    /// (`password_regex`); checked to compile when the configuration is read.
    pub password_regex: Option<String>,
    /// What the regex requires, in words, for the refusal message
    /// (`password_regex_description`).
    pub password_regex_description: Option<String>,
    /// Days a password stays valid after it is set (`password_expires_days`); `None` never
    /// expires.
    pub password_expires_days: Option<u32>,
    /// A password an administrator set (user create or update) must be changed by the user
    /// before it logs in (`change_password_upon_first_use`).
    pub change_password_upon_first_use: bool,
    /// A new password must differ from this many newest passwords, the new one included
    /// (`unique_last_password_count`); 0 (Keystone's default) checks nothing.
    pub unique_last_password_count: u32,
    /// Days a password the user set must be kept before the user may change it again
    /// (`minimum_password_age`); administrators' resets are not bound by it.
    pub minimum_password_age: u32,
    /// Days without a successful password login after which a user counts as disabled
    /// (`disable_user_account_days_inactive`); `None`, Keystone's default, never.
    pub disable_user_account_days_inactive: Option<u32>,
    /// `report_invalid_password_hash = event`: failed-login events carry a partial keyed hash
    /// of the wrong password, so that a brute force shows as one password tried many times.
    pub invalid_password_hash: Option<InvalidPasswordHash>,
}

/// How the partial hash of a wrong password is made (`invalid_password_hash_*`), as Keystone
/// makes it, so that Keystone and Baton nodes of one cloud report equal hashes.
#[derive(Clone, PartialEq, Eq)]
pub struct InvalidPasswordHash {
    /// `invalid_password_hash_secret_key` (required when reporting is on).
    pub secret_key: String,
    /// `invalid_password_hash_function`: a hashlib name (`sha256` by default).
    pub function: HashFunction,
    /// `invalid_password_hash_max_chars`: how many characters of the base64 hash are kept;
    /// `None`, Keystone's default, keeps all.
    pub max_chars: Option<u32>,
}

impl std::fmt::Debug for InvalidPasswordHash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InvalidPasswordHash")
            .field("secret_key", &"<secret>")
            .field("function", &self.function)
            .field("max_chars", &self.max_chars)
            .finish()
    }
}

/// The digests `invalid_password_hash_function` may name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HashFunction {
    /// `sha1`.
    Sha1,
    /// `sha224`.
    Sha224,
    /// `sha256` (Keystone's default).
    Sha256,
    /// `sha384`.
    Sha384,
    /// `sha512`.
    Sha512,
}

impl Default for SecurityComplianceOptions {
    /// Keystone's defaults: every rule off but a 1800 s lockout (once lockout is on).
    fn default() -> Self {
        SecurityComplianceOptions {
            lockout_failure_attempts: None,
            lockout_duration: 1800,
            password_regex: None,
            password_regex_description: None,
            password_expires_days: None,
            change_password_upon_first_use: false,
            unique_last_password_count: 0,
            minimum_password_age: 0,
            disable_user_account_days_inactive: None,
            invalid_password_hash: None,
        }
    }
}

/// The `[oslo_middleware]` options.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OsloMiddlewareOptions {
    /// Largest accepted request body in bytes (`max_request_body_size`).
    pub max_request_body_size: u64,
}

/// The `[oslo_policy]` options.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OsloPolicyOptions {
    /// Policy overrides file (`policy_file`, default `policy.yaml`). A relative path is resolved
    /// against the directory of the configuration file that sets it (the default, or a value
    /// from the environment, against the last configuration file's directory), as oslo.config
    /// finds policy files next to keystone.conf; an absolute path is kept as given.
    pub policy_file: PathBuf,
    /// Whether `policy_file` was set in a file or the environment. Only then is a missing file
    /// an error: without it, the built-in rules apply alone.
    pub policy_file_explicit: bool,
    /// Ignore deprecated policy defaults (`enforce_new_defaults`).
    pub enforce_new_defaults: bool,
    /// Check token scope against policy scope types (`enforce_scope`; removed
    /// from recent oslo.policy, where it is always on, but still common).
    pub enforce_scope: bool,
}

impl Default for OsloPolicyOptions {
    fn default() -> Self {
        OsloPolicyOptions {
            policy_file: PathBuf::from(DEFAULT_POLICY_FILE),
            policy_file_explicit: false,
            enforce_new_defaults: true,
            enforce_scope: true,
        }
    }
}

/// Baton's own `[baton]` section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatonOptions {
    /// Listen address (`bind`).
    pub bind: SocketAddr,
    /// Directory for Baton's own state (`data_dir`).
    pub data_dir: Option<PathBuf>,
    /// Bytes the token validation cache may hold (`validation_cache_bytes`, default 64 MiB), as
    /// `ValidatedToken::weight` counts them (about 3 KiB for a project-scoped token with four
    /// roles, so about 21,000 tokens; the catalog is shared, not counted per token). A miss
    /// costs little when the validation snapshot holds the token's user and project.
    pub validation_cache_bytes: u64,
    /// Seconds a validation result is cached (`validation_cache_ttl`).
    pub validation_cache_ttl: u32,
    /// Bytes of users, projects and role assignments kept in memory for validating tokens new
    /// to this node (`snapshot_cache_bytes`, default 32 MiB; 0 reads the database each time).
    /// Entries live `validation_cache_ttl` at most and go at every write, as validations do.
    pub snapshot_cache_bytes: u64,
    /// Threads serving HTTP, each with a single-threaded runtime of its own
    /// (`worker_threads`); `None` means one per core.
    pub worker_threads: Option<usize>,
    /// Client connections served at once (`max_connections`, default 512); further ones wait
    /// in the listen backlog. Keep it below the open-file limit (the usual soft limit is 1024),
    /// with room for database connections.
    pub max_connections: u32,
    /// Seconds to receive a request head, and a keep-alive connection's idle limit before its
    /// next request (`header_timeout`, default 30); then the connection is closed.
    pub header_timeout: u32,
    /// Seconds to receive a request body, counted from its head (`body_timeout`, default 30);
    /// then 408 and the connection is closed.
    pub body_timeout: u32,
    /// Milliseconds between two looks at the shared change feed (`change_poll_interval_ms`,
    /// default 200): how long a write made on another node can take to reach this node's
    /// validations. PostgreSQL also wakes the node at once through `LISTEN`.
    pub change_poll_interval_ms: u32,
    /// Failed password logins one source address may make per `login_failure_window` before
    /// its password logins get 429 without any hashing (`login_failures_per_address`, default
    /// 600; 0 for no limit).
    pub login_failures_per_address: u32,
    /// Failed password logins per window for one user name, existing or not
    /// (`login_failures_per_user_name`, default 30; 0 for no limit).
    pub login_failures_per_user_name: u32,
    /// Seconds of the window both limits count in (`login_failure_window`, default 60).
    pub login_failure_window: u32,
    /// Password and application-credential secret hashes computed at once at the server's
    /// priority (`password_hash_workers`; 0, the default: one fewer than the cores, at least
    /// one), so that a login storm never takes every core from token validation.
    pub password_hash_workers: u32,
    /// Niceness of the spare hashing threads, one per core left over by
    /// `password_hash_workers`, which hash only while no token is being validated
    /// (`password_hash_nice`, 0 to 19, default 10).
    pub password_hash_nice: u32,
    /// Seconds a login or password change waits for a hashing slot before it is answered 503
    /// with `Retry-After` (`password_hash_max_wait`, default 5).
    pub password_hash_max_wait: u32,
    /// Serve HTTPS with this PEM certificate chain and key (`tls_cert_file`, `tls_key_file`,
    /// both or neither; reloaded when the files change); `None`: plain HTTP.
    pub tls: Option<crate::tls::TlsFiles>,
}

/// The typed keystone.conf for Baton's identity server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdentityConfig {
    /// `[DEFAULT]`.
    pub default: DefaultOptions,
    /// `[database]`.
    pub database: DatabaseOptions,
    /// `[token]`.
    pub token: TokenOptions,
    /// `[fernet_tokens]`.
    pub fernet_tokens: FernetOptions,
    /// `[fernet_receipts]`.
    pub fernet_receipts: FernetOptions,
    /// `[identity]`.
    pub identity: IdentityOptions,
    /// `[credential]`.
    pub credential: CredentialOptions,
    /// `[auth]`.
    pub auth: AuthOptions,
    /// `[resource]`.
    pub resource: ResourceOptions,
    /// `[revoke]`.
    pub revoke: RevokeOptions,
    /// `[application_credential]`.
    pub application_credential: ApplicationCredentialOptions,
    /// `[trust]`.
    pub trust: TrustOptions,
    /// `[security_compliance]`.
    pub security_compliance: SecurityComplianceOptions,
    /// `[continuation]` (Baton's own).
    pub continuation: ContinuationOptions,
    /// `[token_pairs]` (Baton's own).
    pub token_pairs: TokenPairOptions,
    /// `[catalog]`.
    pub catalog: CatalogOptions,
    /// `[unified_limit]`.
    pub unified_limit: UnifiedLimitOptions,
    /// `[endpoint_filter]`.
    pub endpoint_filter: EndpointFilterOptions,
    /// `[policy]` (the policy-blob API, not `[oslo_policy]`).
    pub policy_api: PolicyApiOptions,
    /// `[role]`.
    pub role: RoleOptions,
    /// `[oauth1]`.
    pub oauth1: OAuth1Options,
    /// `[ldap]`'s options a domain's configuration may set, as this file gives them (the
    /// defaults `/v3/domains/config/default` shows; Baton has no LDAP driver).
    pub ldap: crate::domain_config::LdapDefaults,
    /// `[oslo_middleware]`.
    pub oslo_middleware: OsloMiddlewareOptions,
    /// `[oslo_policy]`.
    pub oslo_policy: OsloPolicyOptions,
    /// `[oslo_messaging_notifications]` with `[DEFAULT] transport_url`, `notification_format`,
    /// `notification_opt_out`, `default_publisher_id` and `control_exchange`.
    pub notifications: NotificationOptions,
    /// `[baton]`.
    pub baton: BatonOptions,
}

/// Where Keystone's notifications go (`[oslo_messaging_notifications] driver`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotificationDriver {
    /// `messagingv2`: oslo.messaging's version 2 envelope over the transport (what Ceilometer
    /// and other listeners read).
    MessagingV2,
    /// `messaging`: the old version 1 form, the message without its envelope.
    Messaging,
    /// `log`: each notification as one log line.
    Log,
    /// In-process subscribers only (`baton_audit::Notifier::subscribe`): set by code that
    /// embeds the server (the demo builds its timelines from it); never read from keystone.conf.
    Local,
}

/// `[DEFAULT] notification_format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotificationFormat {
    /// A CADF event with the initiator, target and observer (Keystone's default).
    Cadf,
    /// Only the resource id (`{"resource_info": id}`).
    Basic,
}

/// Keystone's notification options, read from `[oslo_messaging_notifications]` and
/// `[DEFAULT]`. Off unless a driver is set (as with oslo.messaging's `noop` default).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotificationOptions {
    /// `driver` (multi-valued); `noop` and no value mean none.
    pub drivers: Vec<NotificationDriver>,
    /// `[oslo_messaging_notifications] transport_url`, else `[DEFAULT] transport_url`
    /// (`rabbit://user:password@host:port/vhost`).
    pub transport_url: Option<String>,
    /// `topics` (default `notifications`): each notification goes to `<topic>.<priority>`.
    pub topics: Vec<String>,
    /// `[DEFAULT] notification_format`.
    pub format: NotificationFormat,
    /// `[DEFAULT] notification_opt_out` (multi-valued): event types not sent; authentication
    /// events are named with their outcome (`identity.authenticate.success`).
    pub opt_out: Vec<String>,
    /// `[DEFAULT] default_publisher_id`: the notifications' `publisher_id` is
    /// `identity.<this>`, the host name when unset.
    pub publisher_id: Option<String>,
    /// `[DEFAULT] control_exchange`: the exchange (Keystone sets `keystone`).
    pub control_exchange: String,
    /// `[baton] notification_buffer` (Baton's own, default 10000): events that may wait while
    /// the broker is away; more are dropped and counted, never waited for.
    pub buffer: usize,
    /// `[oslo_messaging_rabbit] ssl` and its files: TLS to the broker when set.
    pub rabbit_tls: Option<RabbitTls>,
}

/// TLS to the message broker, as oslo.messaging's rabbit driver reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RabbitTls {
    /// `ssl_ca_file`: CA certificates trusted besides the built-in web roots.
    pub ca_file: Option<PathBuf>,
    /// `ssl_cert_file` and `ssl_key_file`: the client certificate, when the broker asks.
    pub client: Option<crate::tls::TlsFiles>,
}

impl Default for NotificationOptions {
    fn default() -> Self {
        NotificationOptions {
            drivers: Vec::new(),
            transport_url: None,
            topics: vec!["notifications".into()],
            format: NotificationFormat::Cadf,
            opt_out: vec![
                "identity.authenticate.success".into(),
                "identity.authenticate.pending".into(),
            ],
            publisher_id: None,
            control_exchange: "keystone".into(),
            rabbit_tls: None,
            buffer: 10_000,
        }
    }
}

impl NotificationOptions {
    /// Whether notifications are sent anywhere.
    pub fn enabled(&self) -> bool {
        !self.drivers.is_empty()
    }

    /// Whether `event_type` (with `.outcome` for authentication) is opted out.
    pub fn opted_out(&self, event_type: &str) -> bool {
        self.opt_out.iter().any(|o| o == event_type)
    }
}

/// Keystone's default key repository, shared by tokens and receipts.
pub const DEFAULT_KEY_REPOSITORY: &str = "/etc/keystone/fernet-keys/";

impl Default for FernetOptions {
    fn default() -> Self {
        FernetOptions {
            key_repository: PathBuf::from(DEFAULT_KEY_REPOSITORY),
            max_active_keys: 3,
            key_distribution: KeyDistribution::Filesystem,
            key_encryption_key_file: None,
        }
    }
}

impl Default for IdentityConfig {
    /// Keystone's defaults: exactly what an empty keystone.conf gives.
    fn default() -> Self {
        IdentityConfig {
            default: DefaultOptions {
                public_endpoint: None,
                insecure_debug: false,
                debug: false,
                max_token_size: 255,
                list_limit: None,
                max_param_size: 64,
                max_project_tree_depth: 5,
                strict_password_check: false,
            },
            database: DatabaseOptions::default(),
            token: TokenOptions {
                expiration: 3600,
                allow_expired_window: 48 * 60 * 60,
                caching: true,
                cache_time: None,
                allow_rescope_scoped_token: true,
                revoke_by_id: true,
            },
            fernet_tokens: FernetOptions::default(),
            fernet_receipts: FernetOptions::default(),
            credential: CredentialOptions::default(),
            identity: IdentityOptions {
                password_hash_algorithm: PasswordHashAlgorithm::Bcrypt,
                password_hash_rounds: None,
                max_password_length: 4096,
                default_domain_id: "default".to_owned(),
                list_limit: None,
            },
            auth: AuthOptions {
                methods: DEFAULT_AUTH_METHODS
                    .iter()
                    .map(|m| (*m).to_owned())
                    .collect(),
            },
            resource: ResourceOptions::default(),
            revoke: RevokeOptions {
                expiration_buffer: 1800,
            },
            application_credential: ApplicationCredentialOptions::default(),
            trust: TrustOptions {
                max_redelegation_count: 3,
            },
            security_compliance: SecurityComplianceOptions::default(),
            token_pairs: TokenPairOptions::default(),
            continuation: ContinuationOptions::default(),
            notifications: NotificationOptions::default(),
            catalog: CatalogOptions::default(),
            unified_limit: UnifiedLimitOptions::default(),
            endpoint_filter: EndpointFilterOptions::default(),
            policy_api: PolicyApiOptions::default(),
            role: RoleOptions::default(),
            oauth1: OAuth1Options::default(),
            ldap: crate::domain_config::LdapDefaults::default(),
            oslo_middleware: OsloMiddlewareOptions {
                max_request_body_size: 114_688,
            },
            oslo_policy: OsloPolicyOptions::default(),
            baton: BatonOptions {
                bind: SocketAddr::from(([127, 0, 0, 1], 5000)),
                data_dir: None,
                validation_cache_bytes: 64 << 20,
                validation_cache_ttl: 300,
                snapshot_cache_bytes: 32 << 20,
                worker_threads: None,
                max_connections: 512,
                header_timeout: 30,
                body_timeout: 30,
                change_poll_interval_ms: 200,
                login_failures_per_address: 600,
                login_failures_per_user_name: 30,
                login_failure_window: 60,
                password_hash_workers: 0,
                password_hash_nice: 10,
                password_hash_max_wait: 5,
                tls: None,
            },
        }
    }
}

/// A Keystone option or section present in the configuration that Baton
/// accepted but does not use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ignored {
    /// Section name as written.
    pub section: String,
    /// The option, or `None` when the whole section is ignored.
    pub option: Option<String>,
    /// Where it was set (first occurrence).
    pub origin: Origin,
}

impl IdentityConfig {
    /// Loads `files` in order (later override earlier), applies `BATON__…`
    /// overrides from `env`, and builds the configuration.
    pub fn load<P, K, V>(
        files: impl IntoIterator<Item = P>,
        env: impl IntoIterator<Item = (K, V)>,
    ) -> Result<IdentityConfig, ConfigError>
    where
        P: AsRef<Path>,
        K: AsRef<str>,
        V: AsRef<str>,
    {
        let mut ini = IniFile::load_all(files)?;
        ini.apply_env(env)?;
        IdentityConfig::from_ini(&ini)
    }

    /// Builds the configuration, logging a warning for each ignored option
    /// or section.
    pub fn from_ini(ini: &IniFile) -> Result<IdentityConfig, ConfigError> {
        let (config, ignored) = IdentityConfig::from_ini_with_ignored(ini)?;
        for item in &ignored {
            match &item.option {
                Some(option) => tracing::warn!(
                    origin = %item.origin,
                    "[{}] {option} ignored: Baton does not use this option",
                    item.section
                ),
                None => tracing::warn!(
                    origin = %item.origin,
                    "[{}] ignored: Baton does not use this section",
                    item.section
                ),
            }
        }
        Ok(config)
    }

    /// Builds the configuration and returns what was ignored instead of
    /// logging it.
    pub fn from_ini_with_ignored(
        ini: &IniFile,
    ) -> Result<(IdentityConfig, Vec<Ignored>), ConfigError> {
        let methods = read_methods(ini)?;
        let ignored = check_names(ini, methods.as_deref().unwrap_or(&[]))?;
        let mut config = read_typed(ini)?;
        if let Some(methods) = methods {
            config.auth.methods = methods;
        }
        Ok((config, ignored))
    }
}

fn read_methods(ini: &IniFile) -> Result<Option<Vec<String>>, ConfigError> {
    let handle = ini.option("auth", "methods");
    let (Some(value), Some(methods)) = (handle.value(), handle.list()?) else {
        return Ok(None);
    };
    if methods.is_empty() {
        return Err(value.error("auth", "methods", "at least one method is required"));
    }
    for (index, method) in methods.iter().enumerate() {
        if methods[..index].contains(method) {
            return Err(value.error("auth", "methods", format!("duplicate method {method:?}")));
        }
    }
    Ok(Some(methods))
}

fn known_options(section: &str) -> Option<&'static [&'static str]> {
    KNOWN_OPTIONS
        .iter()
        .find(|(name, _)| *name == section)
        .map(|(_, options)| *options)
}

fn ignored_options(section: &str) -> &'static [&'static str] {
    IGNORED_OPTIONS
        .iter()
        .find(|(name, _)| *name == section)
        .map_or(&[], |(_, options)| *options)
}

fn is_ignored_option(section: &str, option: &str, methods: &[String]) -> bool {
    ignored_options(section).contains(&option)
        || IGNORED_OPTION_PREFIXES
            .iter()
            .any(|(s, prefix)| *s == section && option.starts_with(prefix))
        || (section == "auth"
            && (DEFAULT_AUTH_METHODS.contains(&option) || methods.iter().any(|m| m == option)))
}

/// Rejects unknown sections and options; returns the ignored ones.
fn check_names(ini: &IniFile, methods: &[String]) -> Result<Vec<Ignored>, ConfigError> {
    let mut ignored: Vec<Ignored> = Vec::new();
    for section in ini.sections() {
        let name = section.name();
        let normalized = normalize_section(name);
        if let Some(known) = known_options(&normalized) {
            for (option, value) in section.entries() {
                if known.contains(&option) {
                    continue;
                }
                if is_ignored_option(&normalized, option, methods) {
                    if !ignored
                        .iter()
                        .any(|i| i.section == name && i.option.as_deref() == Some(option))
                    {
                        ignored.push(Ignored {
                            section: name.to_owned(),
                            option: Some(option.to_owned()),
                            origin: value.origin().clone(),
                        });
                    }
                    continue;
                }
                let mut candidates: Vec<&str> = known.to_vec();
                candidates.extend_from_slice(ignored_options(&normalized));
                let reason = match suggest(option, candidates) {
                    Some(s) => format!("unknown option (did you mean {s:?}?)"),
                    None => "unknown option".to_owned(),
                };
                return Err(value.error(name, option, reason));
            }
        } else if IGNORED_SECTIONS.contains(&normalized.as_str()) || methods.contains(&normalized) {
            ignored.push(Ignored {
                section: name.to_owned(),
                option: None,
                origin: section.origin().clone(),
            });
        } else {
            let candidates = KNOWN_OPTIONS
                .iter()
                .map(|(s, _)| *s)
                .chain(IGNORED_SECTIONS.iter().copied());
            let reason = match suggest(name, candidates) {
                Some(s) => format!("unknown section (did you mean [{s}]?)"),
                None => "unknown section".to_owned(),
            };
            return Err(ConfigErrorKind::Section {
                origin: section.origin().clone(),
                section: name.to_owned(),
                reason,
            }
            .into());
        }
    }
    Ok(ignored)
}

/// The closest candidate within a small edit distance, compared case-insensitively.
fn suggest<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let word = word.to_lowercase();
    candidates
        .into_iter()
        .map(|c| (edit_distance(&word, &c.to_lowercase()), c))
        .filter(|(d, c)| *d <= 2 && *d < c.chars().count())
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut current = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let substitution = previous[j] + usize::from(ca != *cb);
            current.push(substitution.min(previous[j + 1] + 1).min(current[j] + 1));
        }
        previous = current;
    }
    previous[b.len()]
}

/// Checks a value against the one spelling Baton supports.
fn only(r: SectionReader, option: &str, supported: &str, reason: &str) -> Result<(), ConfigError> {
    r.custom(option, |text| {
        if text == supported {
            Ok(())
        } else {
            Err(reason.to_owned())
        }
    })
    .map(|_| ())
}

fn fernet(r: SectionReader) -> Result<FernetOptions, ConfigError> {
    let defaults = FernetOptions::default();
    let key_distribution = read_distribution(r)?;
    let key_encryption_key_file = r.non_empty("key_encryption_key_file")?.map(PathBuf::from);
    if key_distribution == KeyDistribution::Database && key_encryption_key_file.is_none() {
        return Err(r.missing(
            "key_encryption_key_file",
            "key_distribution = database seals the shared keys with it",
        ));
    }
    Ok(FernetOptions {
        key_repository: r
            .non_empty("key_repository")?
            .map_or(defaults.key_repository, PathBuf::from),
        max_active_keys: r
            .u32("max_active_keys", 1)?
            .unwrap_or(defaults.max_active_keys),
        key_distribution,
        key_encryption_key_file,
    })
}

/// `[endpoint_filter]`.
fn read_endpoint_filter(r: SectionReader) -> Result<EndpointFilterOptions, ConfigError> {
    Ok(EndpointFilterOptions {
        return_all_endpoints_if_no_filter: r
            .bool("return_all_endpoints_if_no_filter")?
            .unwrap_or(true),
    })
}

/// `[unified_limit]`: the enforcement model (a name Keystone does not know is an error, as
/// oslo.config's `choices` make it), and `list_limit` (0 as unset, as Keystone reads it).
fn read_unified_limit(r: SectionReader) -> Result<UnifiedLimitOptions, ConfigError> {
    let model = r
        .option("enforcement_model")
        .choice(&["flat", "strict_two_level"])?;
    Ok(UnifiedLimitOptions {
        enforcement_model: match model.as_deref() {
            Some("strict_two_level") => EnforcementModel::StrictTwoLevel,
            _ => EnforcementModel::Flat,
        },
        list_limit: r.u32("list_limit", 0)?.filter(|l| *l > 0),
    })
}

/// `key_distribution`: `filesystem` (default) or `database`.
fn read_distribution(r: SectionReader) -> Result<KeyDistribution, ConfigError> {
    Ok(
        match r
            .option("key_distribution")
            .choice(&["filesystem", "database"])?
            .as_deref()
        {
            Some("database") => KeyDistribution::Database,
            _ => KeyDistribution::Filesystem,
        },
    )
}

/// `[credential]`.
fn read_credential(
    r: SectionReader,
    d: CredentialOptions,
) -> Result<CredentialOptions, ConfigError> {
    Ok(CredentialOptions {
        key_repository: r
            .non_empty("key_repository")?
            .map_or(d.key_repository, PathBuf::from),
        max_active_keys: r.u32("max_active_keys", 3)?.unwrap_or(d.max_active_keys),
        key_distribution: read_distribution(r)?,
        auth_ttl: r.u32("auth_ttl", 0)?.unwrap_or(d.auth_ttl),
        user_limit: r.int("user_limit", -1, i64::MAX)?.unwrap_or(d.user_limit),
    })
}

/// `[credential]`, whose `key_distribution = database` needs `[fernet_tokens]
/// key_encryption_key_file` (one KEK seals both key sets).
fn read_credential_keys(
    ini: &IniFile,
    d: CredentialOptions,
) -> Result<CredentialOptions, ConfigError> {
    let r = ini.reader("credential");
    let options = read_credential(r, d)?;
    let kek = ini
        .reader("fernet_tokens")
        .non_empty("key_encryption_key_file")?;
    if options.key_distribution == KeyDistribution::Database && kek.is_none() {
        return Err(r.error(
            "key_distribution = database needs [fernet_tokens] key_encryption_key_file, the key that seals the shared credential keys",
        ));
    }
    Ok(options)
}

/// `[oslo_policy] policy_file` made usable from any working directory: relative to the
/// directory of the file that set it, or (default value, environment override) of the last
/// configuration file loaded, the first place oslo.config's `find_file` looks.
fn resolve_policy_file(ini: &IniFile, configured: Option<String>) -> PathBuf {
    let setting_file = ini
        .get("oslo_policy", "policy_file")
        .filter(|_| configured.is_some())
        .and_then(|value| match value.origin() {
            Origin::File { name, .. } => Some(name.to_string()),
            Origin::Environment { .. } => None,
        });
    let base = setting_file.or_else(|| ini.sources().last().map(str::to_owned));
    let path = PathBuf::from(configured.as_deref().unwrap_or(DEFAULT_POLICY_FILE));
    match base.as_deref().map(Path::new).and_then(Path::parent) {
        Some(dir) if path.is_relative() => dir.join(path),
        _ => path,
    }
}

/// `[revoke]`.
fn read_revoke(ini: &IniFile, d: &RevokeOptions) -> Result<RevokeOptions, ConfigError> {
    Ok(RevokeOptions {
        expiration_buffer: ini
            .reader("revoke")
            .u32("expiration_buffer", 0)?
            .unwrap_or(d.expiration_buffer),
    })
}

/// `[trust]`.
fn read_oauth1(r: SectionReader, d: &OAuth1Options) -> Result<OAuth1Options, ConfigError> {
    Ok(OAuth1Options {
        request_token_duration: r
            .u32("request_token_duration", 0)?
            .unwrap_or(d.request_token_duration),
        access_token_duration: r
            .u32("access_token_duration", 0)?
            .unwrap_or(d.access_token_duration),
    })
}

fn read_trust(ini: &IniFile, d: &TrustOptions) -> Result<TrustOptions, ConfigError> {
    Ok(TrustOptions {
        max_redelegation_count: ini
            .reader("trust")
            .u32("max_redelegation_count", 0)?
            .unwrap_or(d.max_redelegation_count),
    })
}

/// `[continuation]`: `name:value` pairs as oslo.config's `DictOpt` writes them.
fn read_continuation(
    r: SectionReader,
    d: ContinuationOptions,
) -> Result<ContinuationOptions, ConfigError> {
    let senders = r
        .custom("senders", |text| {
            dict_pairs(&text)?
                .into_iter()
                .map(|(name, secs)| match secs.parse::<u32>() {
                    Ok(s) if s > 0 => Ok((name, s)),
                    _ => Err(format!(
                        "{name}:{secs}: the longest operation must be a number of seconds, at least 1"
                    )),
                })
                .collect::<Result<Vec<_>, String>>()
        })?
        .unwrap_or_default();
    let receivers = r
        .custom("receivers", |text| dict_pairs(&text))?
        .unwrap_or_default();
    let actor_roles = r
        .list("actor_roles")?
        .filter(|l| !l.is_empty())
        .unwrap_or(d.actor_roles);
    Ok(ContinuationOptions {
        senders,
        receivers,
        service_user_domain_name: r
            .non_empty("service_user_domain_name")?
            .unwrap_or(d.service_user_domain_name),
        token_lifetime: r
            .int("token_lifetime", 1, 86_400)?
            .unwrap_or(d.token_lifetime),
        actor_roles,
    })
}

/// `[token_pairs]`: `sender/receiver:seconds` rules.
fn read_token_pairs(
    r: SectionReader,
    d: TokenPairOptions,
) -> Result<TokenPairOptions, ConfigError> {
    let expired_windows = r
        .custom("expired_windows", |text| {
            dict_pairs(&text)?
                .into_iter()
                .map(|(pair, secs)| {
                    let Some((sender, receiver)) = pair.split_once('/') else {
                        return Err(format!("{pair:?} is not sender/receiver"));
                    };
                    let (sender, receiver) = (sender.trim(), receiver.trim());
                    if sender.is_empty() || receiver.is_empty() {
                        return Err(format!("{pair:?} has an empty sender or receiver"));
                    }
                    let secs = secs.parse::<u32>().map_err(|_| {
                        format!("{pair}:{secs}: the window must be a number of seconds, at least 0")
                    })?;
                    Ok((sender.to_owned(), receiver.to_owned(), secs))
                })
                .collect::<Result<Vec<_>, String>>()
        })?
        .unwrap_or_default();
    Ok(TokenPairOptions {
        expired_windows,
        service_user_domain_name: r
            .non_empty("service_user_domain_name")?
            .unwrap_or(d.service_user_domain_name),
    })
}

/// `a:b, c:d` -> pairs, each side non-empty, each key once.
fn dict_pairs(text: &str) -> Result<Vec<(String, String)>, String> {
    let mut out: Vec<(String, String)> = Vec::new();
    for item in text.split(',').map(str::trim).filter(|i| !i.is_empty()) {
        let Some((k, v)) = item.split_once(':') else {
            return Err(format!("{item:?} is not a key:value pair"));
        };
        let (k, v) = (k.trim(), v.trim());
        if k.is_empty() || v.is_empty() {
            return Err(format!("{item:?} has an empty key or value"));
        }
        if out.iter().any(|(seen, _)| seen == k) {
            return Err(format!("{k:?} is given twice"));
        }
        out.push((k.to_owned(), v.to_owned()));
    }
    Ok(out)
}

/// `[security_compliance]`: the lockout options.
fn read_security_compliance(
    ini: &IniFile,
    d: &SecurityComplianceOptions,
) -> Result<SecurityComplianceOptions, ConfigError> {
    let section = ini.reader("security_compliance");
    Ok(SecurityComplianceOptions {
        lockout_failure_attempts: section.int("lockout_failure_attempts", 1, 1_000_000)?,
        lockout_duration: section
            .int("lockout_duration", 1, i64::from(u32::MAX))?
            .unwrap_or(d.lockout_duration),
        password_regex: read_password_regex(ini)?,
        password_regex_description: section
            .string_untrimmed("password_regex_description")?
            .filter(|s| !s.is_empty()),
        password_expires_days: section.int("password_expires_days", 1, 100_000)?,
        change_password_upon_first_use: section
            .bool("change_password_upon_first_use")?
            .unwrap_or(false),
        unique_last_password_count: section
            .int("unique_last_password_count", 0, 1000)?
            .unwrap_or(0),
        minimum_password_age: section
            .int("minimum_password_age", 0, 100_000)?
            .unwrap_or(0),
        disable_user_account_days_inactive: section.int(
            "disable_user_account_days_inactive",
            1,
            100_000,
        )?,
        invalid_password_hash: read_invalid_password_hash(&section)?,
    })
}

/// `report_invalid_password_hash` (a list; `event` is the one choice) and the hash's options.
/// Keystone fails each failed login with a 500 when the secret key is missing; Baton refuses
/// the file.
fn read_invalid_password_hash(
    section: &SectionReader,
) -> Result<Option<InvalidPasswordHash>, ConfigError> {
    let Some(report) = section.custom("report_invalid_password_hash", |text| {
        let mut on = false;
        for item in text.split(',').map(str::trim).filter(|i| !i.is_empty()) {
            if item != "event" {
                return Err(format!("{item:?} is not one of: event"));
            }
            on = true;
        }
        Ok(on)
    })?
    else {
        return Ok(None);
    };
    if !report {
        return Ok(None);
    }
    let function = section
        .custom("invalid_password_hash_function", |text| {
            Ok(match text.trim() {
                "sha1" => HashFunction::Sha1,
                "sha224" => HashFunction::Sha224,
                "sha256" => HashFunction::Sha256,
                "sha384" => HashFunction::Sha384,
                "sha512" => HashFunction::Sha512,
                other => {
                    return Err(format!(
                        "{other:?} is not a digest Baton has (sha1, sha224, sha256, sha384, sha512)"
                    ))
                }
            })
        })?
        .unwrap_or(HashFunction::Sha256);
    let secret_key = section
        .custom("invalid_password_hash_secret_key", |text| {
            if text.is_empty() {
                Err("must not be empty when report_invalid_password_hash = event".into())
            } else {
                Ok(text)
            }
        })?
        .ok_or_else(|| {
            ConfigError::value(
                &section.origin(),
                "security_compliance",
                "report_invalid_password_hash",
                "event",
                "needs [security_compliance] invalid_password_hash_secret_key",
            )
        })?;
    Ok(Some(InvalidPasswordHash {
        secret_key,
        function,
        max_chars: section.int("invalid_password_hash_max_chars", 1, 1_000_000)?,
    }))
}

/// `password_regex`, refused at start when it does not compile (Keystone finds out at the
/// first password change and answers every one with a 400).
fn read_password_regex(ini: &IniFile) -> Result<Option<String>, ConfigError> {
    let handle = ini.option("security_compliance", "password_regex");
    let (Some(value), Some(pattern)) = (handle.value(), handle.string()?) else {
        return Ok(None);
    };
    if pattern.is_empty() {
        return Ok(None);
    }
    if let Err(e) = fancy_regex::Regex::new(&pattern) {
        return Err(value.error(
            "security_compliance",
            "password_regex",
            format!("not a valid regular expression: {e}"),
        ));
    }
    Ok(Some(pattern))
}

/// `[baton] bind`.
fn read_bind(baton: SectionReader, default: SocketAddr) -> Result<SocketAddr, ConfigError> {
    Ok(baton
        .custom("bind", |text| {
            text.trim().parse::<SocketAddr>().map_err(|_| {
                "not an IP address and port (e.g. 127.0.0.1:5000 or [::]:5000)".to_owned()
            })
        })?
        .unwrap_or(default))
}

/// A section's `list_limit`; Keystone reads 0 as "not set" (`CONF.<section>.list_limit or
/// CONF.list_limit`).
fn section_list_limit(ini: &IniFile, section: &str) -> Result<Option<u32>, ConfigError> {
    Ok(ini.reader(section).u32("list_limit", 0)?.filter(|l| *l > 0))
}

fn read_typed(ini: &IniFile) -> Result<IdentityConfig, ConfigError> {
    let d = IdentityConfig::default();
    let def = ini.reader(DEFAULT_SECTION);
    let database = ini.reader("database");
    let token = ini.reader("token");
    let identity = ini.reader("identity");
    let resource = ini.reader("resource");
    let policy = ini.reader("oslo_policy");
    let baton = ini.reader("baton");

    let public_endpoint = def
        .custom("public_endpoint", |url| {
            if url.is_empty() || url.starts_with("http://") || url.starts_with("https://") {
                Ok(url)
            } else {
                Err("not an http:// or https:// URL".to_owned())
            }
        })?
        .filter(|url| !url.is_empty());

    only(
        token,
        "provider",
        "fernet",
        "Baton supports only the fernet token provider",
    )?;
    only(
        identity,
        "driver",
        "sql",
        "Baton supports only the sql identity driver",
    )?;

    let password_hash_algorithm =
        read_hash_algorithm(identity, d.identity.password_hash_algorithm)?;

    let policy_file = policy.non_empty("policy_file")?;

    let bind = read_bind(baton, d.baton.bind)?;

    Ok(IdentityConfig {
        default: read_default(def, public_endpoint, d.default)?,
        database: DatabaseOptions {
            connection: database.string_untrimmed("connection")?,
            max_pool_size: database.u32("max_pool_size", 0)?,
            connection_recycle_time: database.u32("connection_recycle_time", 0)?,
        },
        token: read_token(token, d.token)?,
        fernet_tokens: fernet(ini.reader("fernet_tokens"))?,
        fernet_receipts: fernet(ini.reader("fernet_receipts"))?,
        identity: read_identity_options(identity, password_hash_algorithm, d.identity)?,
        credential: read_credential_keys(ini, d.credential)?,
        auth: d.auth,
        resource: ResourceOptions {
            admin_project_name: resource.string_untrimmed("admin_project_name")?,
            admin_project_domain_name: resource.string_untrimmed("admin_project_domain_name")?,
            list_limit: section_list_limit(ini, "resource")?,
        },
        role: RoleOptions {
            list_limit: section_list_limit(ini, "role")?,
        },
        oauth1: read_oauth1(ini.reader("oauth1"), &d.oauth1)?,
        revoke: read_revoke(ini, &d.revoke)?,
        application_credential: read_application_credential(ini.reader("application_credential"))?,
        trust: read_trust(ini, &d.trust)?,
        security_compliance: read_security_compliance(ini, &d.security_compliance)?,
        continuation: read_continuation(ini.reader("continuation"), d.continuation)?,
        token_pairs: read_token_pairs(ini.reader("token_pairs"), d.token_pairs)?,
        catalog: CatalogOptions {
            list_limit: section_list_limit(ini, "catalog")?,
        },
        unified_limit: read_unified_limit(ini.reader("unified_limit"))?,
        endpoint_filter: read_endpoint_filter(ini.reader("endpoint_filter"))?,
        policy_api: PolicyApiOptions {
            list_limit: section_list_limit(ini, "policy")?,
        },
        ldap: crate::domain_config::read_ldap(ini)?,
        oslo_middleware: OsloMiddlewareOptions {
            max_request_body_size: ini
                .reader("oslo_middleware")
                .int("max_request_body_size", 0, i64::MAX)?
                .unwrap_or(d.oslo_middleware.max_request_body_size),
        },
        oslo_policy: read_policy(ini, policy, policy_file, d.oslo_policy)?,
        notifications: read_notifications(ini, d.notifications)?,
        baton: read_baton(baton, bind, d.baton)?,
    })
}

/// `[oslo_messaging_notifications] driver`, every occurrence (a multi-valued option).
fn read_notification_drivers(ini: &IniFile) -> Result<Vec<NotificationDriver>, ConfigError> {
    let mut drivers = Vec::new();
    for value in ini.get_all("oslo_messaging_notifications", "driver") {
        for name in value
            .raw()
            .split(',')
            .map(str::trim)
            .filter(|n| !n.is_empty())
        {
            let driver = match name {
                "messagingv2" => NotificationDriver::MessagingV2,
                "messaging" => NotificationDriver::Messaging,
                "log" => NotificationDriver::Log,
                "noop" => continue,
                other => {
                    return Err(value.error(
                        "oslo_messaging_notifications",
                        "driver",
                        format!("{other:?} is not one of messagingv2, messaging, log, noop"),
                    ))
                }
            };
            if !drivers.contains(&driver) {
                drivers.push(driver);
            }
        }
    }
    Ok(drivers)
}

/// `[oslo_messaging_notifications]` and the notification options of `[DEFAULT]`.
fn read_notifications(
    ini: &IniFile,
    d: NotificationOptions,
) -> Result<NotificationOptions, ConfigError> {
    let section = ini.reader("oslo_messaging_notifications");
    let def = ini.reader(DEFAULT_SECTION);
    let drivers = read_notification_drivers(ini)?;
    let (transport_url, url_section) = match section.string("transport_url")? {
        Some(url) => (Some(url), "oslo_messaging_notifications"),
        None => (def.string("transport_url")?, DEFAULT_SECTION),
    };
    let needs_transport = drivers.iter().any(|d| {
        matches!(
            d,
            NotificationDriver::MessagingV2 | NotificationDriver::Messaging
        )
    });
    match &transport_url {
        None if needs_transport => return Err(section.missing(
            "transport_url",
            "the messaging drivers need [DEFAULT] or [oslo_messaging_notifications] transport_url",
        )),
        Some(url) if needs_transport && !url.starts_with("rabbit://") => {
            let value = ini.get(url_section, "transport_url");
            let reason =
                "only rabbit:// transports are supported (rabbit://user:password@host:5672/vhost)";
            return Err(match value {
                Some(v) => v.error(url_section, "transport_url", reason),
                None => section.error(reason),
            });
        }
        _ => {}
    }
    let format = match def
        .option("notification_format")
        .choice(&["cadf", "basic"])?
        .as_deref()
    {
        Some("basic") => NotificationFormat::Basic,
        Some(_) => NotificationFormat::Cadf,
        None => d.format,
    };
    let opt_out = if def.value("notification_opt_out").is_some() {
        def.option("notification_opt_out")
            .all_strings()?
            .into_iter()
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
            .collect()
    } else {
        d.opt_out
    };
    Ok(NotificationOptions {
        drivers,
        transport_url,
        topics: section
            .list("topics")?
            .filter(|t| !t.is_empty())
            .unwrap_or(d.topics),
        format,
        opt_out,
        publisher_id: def.string("default_publisher_id")?,
        control_exchange: def
            .non_empty("control_exchange")?
            .unwrap_or(d.control_exchange),
        buffer: ini
            .reader("baton")
            .int("notification_buffer", 1, 10_000_000)?
            .unwrap_or(d.buffer),
        rabbit_tls: read_rabbit_tls(ini)?,
    })
}

/// `[oslo_messaging_rabbit] ssl`, `ssl_ca_file`, `ssl_cert_file`, `ssl_key_file`; the files
/// are read now so that a bad one stops the start with its name.
fn read_rabbit_tls(ini: &IniFile) -> Result<Option<RabbitTls>, ConfigError> {
    let r = ini.reader("oslo_messaging_rabbit");
    if !r.bool("ssl")?.unwrap_or(false) {
        return Ok(None);
    }
    let ca_file = match r.text("ssl_ca_file")? {
        Some((path, value)) => {
            let path = PathBuf::from(path);
            crate::tls::read_roots(&path)
                .map_err(|e| value.error("oslo_messaging_rabbit", "ssl_ca_file", e))?;
            Some(path)
        }
        None => None,
    };
    Ok(Some(RabbitTls {
        ca_file,
        client: crate::tls::read_tls_files(r, "ssl_cert_file", "ssl_key_file")?,
    }))
}

/// `[identity] password_hash_algorithm`, one of the algorithms Keystone knows.
fn read_hash_algorithm(
    identity: SectionReader,
    default: PasswordHashAlgorithm,
) -> Result<PasswordHashAlgorithm, ConfigError> {
    let algorithms: Vec<&str> = PasswordHashAlgorithm::ALL.iter().map(|(_, n)| *n).collect();
    Ok(
        match identity
            .option("password_hash_algorithm")
            .choice(&algorithms)?
        {
            Some(name) => PasswordHashAlgorithm::ALL
                .iter()
                .find(|(_, n)| *n == name)
                .map_or(default, |(alg, _)| *alg),
            None => default,
        },
    )
}

/// `[oslo_policy]`: the policy override file (`policy_file`, already read) and the
/// new-defaults and scope switches.
fn read_policy(
    ini: &IniFile,
    policy: SectionReader,
    policy_file: Option<String>,
    d: OsloPolicyOptions,
) -> Result<OsloPolicyOptions, ConfigError> {
    Ok(OsloPolicyOptions {
        policy_file_explicit: policy_file.is_some(),
        policy_file: resolve_policy_file(ini, policy_file),
        enforce_new_defaults: policy
            .bool("enforce_new_defaults")?
            .unwrap_or(d.enforce_new_defaults),
        enforce_scope: policy.bool("enforce_scope")?.unwrap_or(d.enforce_scope),
    })
}

/// `[DEFAULT]` over the defaults `d`: the public endpoint, debug switches and request limits.
fn read_default(
    def: SectionReader,
    public_endpoint: Option<String>,
    d: DefaultOptions,
) -> Result<DefaultOptions, ConfigError> {
    Ok(DefaultOptions {
        public_endpoint,
        insecure_debug: def.bool("insecure_debug")?.unwrap_or(d.insecure_debug),
        debug: def.bool("debug")?.unwrap_or(d.debug),
        max_token_size: def.u32("max_token_size", 0)?.unwrap_or(d.max_token_size),
        list_limit: def.u32("list_limit", 0)?,
        max_param_size: def.u32("max_param_size", 0)?.unwrap_or(d.max_param_size),
        max_project_tree_depth: def
            .u32("max_project_tree_depth", 0)?
            .unwrap_or(d.max_project_tree_depth),
        strict_password_check: def
            .bool("strict_password_check")?
            .unwrap_or(d.strict_password_check),
    })
}

/// `[token]`: lifetime, allow_expired_window and rescoping.
fn read_token(token: SectionReader, d: TokenOptions) -> Result<TokenOptions, ConfigError> {
    Ok(TokenOptions {
        expiration: token.u32("expiration", 1)?.unwrap_or(d.expiration),
        allow_expired_window: token
            .u32("allow_expired_window", 0)?
            .unwrap_or(d.allow_expired_window),
        caching: token.bool("caching")?.unwrap_or(d.caching),
        cache_time: token.u32("cache_time", 0)?,
        allow_rescope_scoped_token: token
            .bool("allow_rescope_scoped_token")?
            .unwrap_or(d.allow_rescope_scoped_token),
        revoke_by_id: token.bool("revoke_by_id")?.unwrap_or(d.revoke_by_id),
    })
}

/// `[identity]`: password hashing and length, the default domain, list limit.
fn read_identity_options(
    identity: SectionReader,
    password_hash_algorithm: PasswordHashAlgorithm,
    d: IdentityOptions,
) -> Result<IdentityOptions, ConfigError> {
    Ok(IdentityOptions {
        password_hash_algorithm,
        password_hash_rounds: identity.u32("password_hash_rounds", 1)?,
        max_password_length: identity
            .int("max_password_length", 1, 4096)?
            .unwrap_or(d.max_password_length),
        default_domain_id: identity
            .non_empty("default_domain_id")?
            .unwrap_or(d.default_domain_id),
        list_limit: identity.u32("list_limit", 0)?.filter(|l| *l > 0),
    })
}

/// `[application_credential]`: Keystone reads any negative `user_limit` as no limit.
fn read_application_credential(
    r: SectionReader,
) -> Result<ApplicationCredentialOptions, ConfigError> {
    Ok(ApplicationCredentialOptions {
        user_limit: r
            .int::<i64>("user_limit", i64::from(i32::MIN), i64::from(u32::MAX))?
            .and_then(|l| u32::try_from(l).ok()),
    })
}

/// `[baton]`: Baton's own options (listener, validation cache, connection limits, timeouts).
fn read_baton(
    baton: SectionReader,
    bind: SocketAddr,
    d: BatonOptions,
) -> Result<BatonOptions, ConfigError> {
    Ok(BatonOptions {
        bind,
        data_dir: baton.string_untrimmed("data_dir")?.map(PathBuf::from),
        validation_cache_bytes: baton
            .int("validation_cache_bytes", 0, i64::MAX)?
            .unwrap_or(d.validation_cache_bytes),
        validation_cache_ttl: baton
            .u32("validation_cache_ttl", 0)?
            .unwrap_or(d.validation_cache_ttl),
        snapshot_cache_bytes: baton
            .int("snapshot_cache_bytes", 0, i64::MAX)?
            .unwrap_or(d.snapshot_cache_bytes),
        worker_threads: baton.int("worker_threads", 1, 1024)?,
        max_connections: baton
            .int("max_connections", 1, 1 << 20)?
            .unwrap_or(d.max_connections),
        header_timeout: baton
            .int("header_timeout", 1, 86_400)?
            .unwrap_or(d.header_timeout),
        body_timeout: baton
            .int("body_timeout", 1, 86_400)?
            .unwrap_or(d.body_timeout),
        change_poll_interval_ms: baton
            .int("change_poll_interval_ms", 10, 60_000)?
            .unwrap_or(d.change_poll_interval_ms),
        login_failures_per_address: baton
            .int("login_failures_per_address", 0, 1_000_000)?
            .unwrap_or(d.login_failures_per_address),
        login_failures_per_user_name: baton
            .int("login_failures_per_user_name", 0, 1_000_000)?
            .unwrap_or(d.login_failures_per_user_name),
        login_failure_window: baton
            .int("login_failure_window", 1, 86_400)?
            .unwrap_or(d.login_failure_window),
        password_hash_workers: baton
            .int("password_hash_workers", 0, 1024)?
            .unwrap_or(d.password_hash_workers),
        password_hash_nice: baton
            .int("password_hash_nice", 0, 19)?
            .unwrap_or(d.password_hash_nice),
        password_hash_max_wait: baton
            .int("password_hash_max_wait", 1, 3600)?
            .unwrap_or(d.password_hash_max_wait),
        tls: crate::tls::read_tls_files(baton, "tls_cert_file", "tls_key_file")?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(text: &str) -> Result<IdentityConfig, ConfigError> {
        IdentityConfig::from_ini(&IniFile::parse(text, "keystone.conf").expect("parses"))
    }

    fn error(text: &str) -> String {
        config(text).unwrap_err().to_string()
    }

    #[test]
    fn empty_file_gives_the_defaults() {
        let empty = IdentityConfig::from_ini(&IniFile::new()).unwrap();
        assert_eq!(empty, IdentityConfig::default());
        assert_eq!(empty.token.expiration, 3600);
        assert_eq!(empty.token.allow_expired_window, 172_800);
        assert_eq!(
            empty.fernet_tokens.key_repository,
            PathBuf::from("/etc/keystone/fernet-keys/")
        );
        assert_eq!(empty.fernet_receipts.max_active_keys, 3);
        assert_eq!(empty.auth.methods, DEFAULT_AUTH_METHODS);
        assert_eq!(empty.baton.bind.to_string(), "127.0.0.1:5000");
        assert_eq!(empty.baton.max_connections, 512);
        assert_eq!(empty.baton.header_timeout, 30);
        assert_eq!(empty.baton.body_timeout, 30);
        // Sections present but empty change nothing either.
        assert_eq!(
            config("[DEFAULT]\n[token]\n[baton]\n[cache]\n").unwrap(),
            empty
        );
    }

    #[test]
    fn allow_lists_do_not_overlap_the_options_baton_reads() {
        for (section, options) in IGNORED_OPTIONS {
            let known = known_options(section).expect("ignored options belong to a known section");
            for option in *options {
                assert!(
                    !known.contains(option),
                    "[{section}] {option} is both read and ignored"
                );
            }
        }
        for (section, _) in KNOWN_OPTIONS {
            assert!(
                !IGNORED_SECTIONS.contains(section),
                "[{section}] is both read and ignored"
            );
        }
    }

    #[test]
    fn notification_options_are_read_as_keystone_reads_them() {
        let off = IdentityConfig::default().notifications;
        assert!(!off.enabled());
        assert!(off.opted_out("identity.authenticate.success"));
        assert!(!off.opted_out("identity.authenticate.failure"));
        let n = IdentityConfig::from_ini(
            &IniFile::parse(
                "[DEFAULT]\ntransport_url = rabbit://u:p@h:5672/\nnotification_format = basic\nnotification_opt_out = identity.user.created\nnotification_opt_out = identity.project.deleted\n[oslo_messaging_notifications]\ndriver = messagingv2\ndriver = log\ntopics = notifications, audit\n",
                "keystone.conf",
            )
            .unwrap(),
        )
        .unwrap()
        .notifications;
        assert_eq!(
            n.drivers,
            [NotificationDriver::MessagingV2, NotificationDriver::Log]
        );
        assert_eq!(n.format, NotificationFormat::Basic);
        assert_eq!(
            n.opt_out,
            ["identity.user.created", "identity.project.deleted"]
        );
        assert_eq!(n.topics, ["notifications", "audit"]);
        assert_eq!(n.control_exchange, "keystone");
        // An empty opt-out opts nothing out.
        let n = IdentityConfig::from_ini(
            &IniFile::parse("[DEFAULT]\nnotification_opt_out =\n", "k.conf").unwrap(),
        )
        .unwrap()
        .notifications;
        assert!(n.opt_out.is_empty());
        for (text, expect) in [
            ("[oslo_messaging_notifications]\ndriver = kafka\n", "[oslo_messaging_notifications] driver"),
            ("[oslo_messaging_notifications]\ndriver = messagingv2\n", "transport_url is not set"),
            (
                "[DEFAULT]\ntransport_url = kafka://u:secretpw@h/\n[oslo_messaging_notifications]\ndriver = messaging\n",
                "[DEFAULT] transport_url",
            ),
        ] {
            let e = error(text);
            assert!(e.contains(expect), "{text}: {e}");
            assert!(!e.contains("secretpw"), "{e}");
        }
    }

    #[test]
    fn continuation_options_are_read_and_bad_pairs_refused() {
        assert!(!IdentityConfig::default().continuation.enabled());
        let c = config(
            "[continuation]\nsenders = nova:86400, cinder : 3600\nreceivers = volume:cinder,image:glance\ntoken_lifetime = 60\n",
        )
        .unwrap()
        .continuation;
        assert!(c.enabled());
        assert_eq!(c.sender_limit("nova"), Some(86_400));
        assert_eq!(c.sender_limit("cinder"), Some(3600));
        assert_eq!(c.sender_limit("glance"), None);
        assert_eq!(c.receiver("image"), Some("glance"));
        assert_eq!(c.receiver("compute"), None);
        assert_eq!(c.token_lifetime, 60);
        assert_eq!(c.actor_roles, ["service"]);
        assert_eq!(c.service_user_domain_name, "Default");
        for (text, expect) in [
            ("senders = nova", "is not a key:value pair"),
            ("senders = nova:0", "at least 1"),
            ("senders = nova:soon", "number of seconds"),
            ("receivers = volume:cinder, volume:other", "given twice"),
            ("receivers = :cinder", "empty key or value"),
            ("token_lifetime = 0", "token_lifetime"),
        ] {
            let e = error(&format!("[continuation]\n{text}\n"));
            assert!(
                e.contains("[continuation]") && e.contains(expect),
                "{text}: {e}"
            );
        }
    }

    #[test]
    fn token_pair_windows_are_read_and_matched_in_order() {
        let t = config("[token_pairs]\nexpired_windows = nova/cinder:86400, nova/*:60, */*:0\n")
            .unwrap()
            .token_pairs;
        assert_eq!(t.expired_window(Some("nova"), Some("cinder")), Some(86_400));
        assert_eq!(t.expired_window(Some("nova"), Some("glance")), Some(60));
        assert_eq!(t.expired_window(Some("nova"), None), Some(60));
        assert_eq!(t.expired_window(None, Some("cinder")), Some(0));
        let none = IdentityConfig::default().token_pairs;
        assert_eq!(none.expired_window(Some("nova"), None), None);
        for (text, expect) in [
            ("expired_windows = nova:60", "not sender/receiver"),
            ("expired_windows = /cinder:60", "empty sender"),
            ("expired_windows = nova/cinder:-1", "number of seconds"),
            (
                "expired_windows = nova/cinder:1, nova/cinder:2",
                "given twice",
            ),
        ] {
            let e = error(&format!("[token_pairs]\n{text}\n"));
            assert!(
                e.contains("[token_pairs]") && e.contains(expect),
                "{text}: {e}"
            );
        }
    }

    #[test]
    fn client_limits_are_read() {
        let c = config("[baton]\nmax_connections = 64\nheader_timeout = 5\nbody_timeout = 7\n")
            .unwrap();
        assert_eq!(
            (
                c.baton.max_connections,
                c.baton.header_timeout,
                c.baton.body_timeout
            ),
            (64, 5, 7)
        );
    }

    #[test]
    fn suggestions_use_small_edit_distances() {
        assert_eq!(edit_distance("expiraton", "expiration"), 1);
        assert_eq!(edit_distance("", "abc"), 3);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
        assert_eq!(
            suggest("expiraton", ["expiration", "provider"]),
            Some("expiration")
        );
        assert_eq!(suggest("Tokne", ["token", "cache"]), Some("token"));
        assert_eq!(suggest("completely_else", ["token"]), None);
        // A two-letter word is not "close" to every other two-letter word.
        assert_eq!(suggest("ab", ["cd"]), None);
    }

    #[test]
    fn every_read_option_is_validated() {
        // A wrong type for each typed option is reported against that option.
        let cases = [
            ("DEFAULT", "insecure_debug", "maybe"),
            ("DEFAULT", "debug", "maybe"),
            ("DEFAULT", "max_token_size", "x"),
            ("DEFAULT", "list_limit", "x"),
            ("catalog", "list_limit", "x"),
            ("unified_limit", "list_limit", "x"),
            (
                "endpoint_filter",
                "return_all_endpoints_if_no_filter",
                "maybe",
            ),
            ("unified_limit", "enforcement_model", "hierarchical"),
            ("DEFAULT", "max_param_size", "x"),
            ("DEFAULT", "max_project_tree_depth", "x"),
            ("DEFAULT", "strict_password_check", "maybe"),
            ("database", "max_pool_size", "x"),
            ("database", "connection_recycle_time", "x"),
            ("token", "expiration", "x"),
            ("token", "allow_expired_window", "x"),
            ("token", "caching", "maybe"),
            ("token", "cache_time", "x"),
            ("token", "allow_rescope_scoped_token", "maybe"),
            ("token", "revoke_by_id", "maybe"),
            ("fernet_tokens", "max_active_keys", "x"),
            ("fernet_receipts", "max_active_keys", "x"),
            ("identity", "password_hash_rounds", "x"),
            ("identity", "max_password_length", "x"),
            ("revoke", "expiration_buffer", "x"),
            ("application_credential", "user_limit", "x"),
            ("oslo_middleware", "max_request_body_size", "x"),
            ("oslo_policy", "enforce_new_defaults", "maybe"),
            ("oslo_policy", "enforce_scope", "maybe"),
            ("baton", "validation_cache_bytes", "x"),
            ("baton", "validation_cache_ttl", "x"),
            ("baton", "worker_threads", "x"),
            ("baton", "max_connections", "x"),
            ("baton", "max_connections", "0"),
            ("baton", "header_timeout", "x"),
            ("baton", "header_timeout", "0"),
            ("baton", "body_timeout", "1.5"),
            ("baton", "body_timeout", "-1"),
            ("baton", "password_hash_workers", "-1"),
            ("baton", "password_hash_nice", "20"),
            ("baton", "password_hash_max_wait", "0"),
        ];
        for (section, option, bad) in cases {
            let text = format!("[{section}]\n{option} = {bad}\n");
            let message = error(&text);
            assert!(
                message.starts_with(&format!(
                    "keystone.conf:2: [{section}] {option} = \"{bad}\": "
                )),
                "{message}"
            );
        }
    }
}
