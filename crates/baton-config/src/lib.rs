//! Reading keystone.conf-style (oslo.config) INI files into typed, validated configuration.
//!
//! This crate owns:
//!
//! * [`IniFile`]: a general oslo.config-compatible INI reader (keystone.conf,
//!   nova.conf, cinder.conf, ...) that keeps every value's file and line,
//!   merges several files like repeated `--config-file`, applies
//!   `BATON__<SECTION>__<OPTION>` environment overrides, performs `$option`
//!   substitution and offers typed getters;
//! * [`SectionReader`]: typed reads of one section with keystoneauth's "empty means unset"
//!   rule and one-line errors, used by every reader of a section (here, in baton-client and
//!   in baton-authtoken);
//! * [`IdentityConfig`]: the typed keystone.conf of Baton's identity server,
//!   with Keystone's option names and defaults, rejecting unknown options and
//!   sections except for a documented allow-list of real Keystone options;
//! * [`ConfigError`]: one-line errors naming file, line, section, option and
//!   value, and those of baton-client's clouds.yaml reader, naming the clouds.yaml key,
//!   `OS_*` variable or `--os-*` option ([`CloudOrigin`]);
//! * [`tls`]: the certificate pair of a TLS listener, checked when read and reloaded when
//!   its files change;
//! * [`parse_duration`]: `90`, `90s`, `15m`, `6h`, `2d` style durations;
//! * [`write_private`]: generated configuration files, written whole and 0600;
//! * [`run_on_threads`]: one listening socket served on `worker_threads` threads, each with a
//!   current-thread runtime.

pub mod domain_config;
mod duration;
mod error;
#[doc(hidden)]
pub mod fuzzing;
mod identity;
mod ini;
mod private_file;
mod reader;
pub mod tls;
mod worker_threads;

pub use duration::{parse_duration, DurationError};
pub use error::{is_secret_option, CloudOrigin, ConfigError, ConfigErrorKind, Origin};
pub use identity::{
    ApplicationCredentialOptions, AuthOptions, BatonOptions, CatalogOptions, ContinuationOptions,
    CredentialOptions, DatabaseOptions, DefaultOptions, EndpointFilterOptions, EnforcementModel,
    FernetOptions, HashFunction, IdentityConfig, IdentityOptions, Ignored, InvalidPasswordHash,
    KeyDistribution, NotificationDriver, NotificationFormat, NotificationOptions, OAuth1Options,
    OsloMiddlewareOptions, OsloPolicyOptions, PasswordHashAlgorithm, PolicyApiOptions, RabbitTls,
    ResourceOptions, RevokeOptions, RoleOptions, SecurityComplianceOptions, TokenOptions,
    TokenPairOptions, UnifiedLimitOptions, DEFAULT_AUTH_METHODS, DEFAULT_CREDENTIAL_KEY_REPOSITORY,
    DEFAULT_KEY_REPOSITORY, IGNORED_OPTIONS, IGNORED_OPTION_PREFIXES, IGNORED_SECTIONS,
};
pub use ini::{IniFile, OptionRef, Section, Value, DEFAULT_SECTION, ENV_PREFIX};
pub use private_file::write_private;
pub use reader::SectionReader;
pub use worker_threads::run_on_threads;
