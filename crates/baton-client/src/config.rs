//! Auth and session options from oslo INI sections, the way keystoneauth's `loading` reads them
//! for Nova's and Cinder's `[service_user]` (and keystonemiddleware's `[keystone_authtoken]`).
//!
//! * `auth_section = other` makes the auth options (`auth_type` included) come from `[other]`;
//!   session options (`cafile`, `insecure`, `timeout`, ...) stay in the section itself.
//! * `auth_type`: `password` and `token` (generic: version discovery first), `v3password`,
//!   `v3token`, `v3applicationcredential` (v3 path rule).
//! * Empty values count as unset, as keystoneauth treats them.
//!
//! Every error is one line naming the file and line, the section and the option; secrets are
//! never echoed.
//!
//! The rules (which options each `auth_type` needs, user and project domains, default domain,
//! one scope) are `AuthConfig::resolve`'s, over an `OptionSource`: an INI section
//! ([`baton_config::SectionReader`]) here, a cloud of clouds.yaml in [`crate::clouds`]. Each
//! source words the errors for its own users.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use baton_config::{ConfigError, IniFile, SectionReader, Value};
use chrono::{DateTime, Utc};
use reqwest::Url;

use crate::error::{Error, Result};
use crate::http::HttpOptions;
use crate::plugin::{
    AppCredRef, ApplicationCredential, AuthPlugin, DomainRef, Password, ProjectRef, Scope, Token,
    UserRef,
};
use crate::secret::{AuthToken, SecretString};
use crate::session::Session;

/// The role receivers require of service tokens by default (keystonemiddleware's
/// `service_token_roles`).
pub const SERVICE_ROLE: &str = "service";

/// The `auth_type` values Baton loads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthType {
    /// `password`: generic, with version discovery.
    Password,
    /// `v3password`.
    V3Password,
    /// `token`: generic, with version discovery.
    Token,
    /// `v3token`.
    V3Token,
    /// `v3applicationcredential`.
    V3ApplicationCredential,
}

/// keystoneauth's auth plugin options (`_` spelling) of the types Baton loads: the one list the
/// INI readers, clouds.yaml ([`crate::clouds::auth_option_names`]) and baton-authtoken use.
pub const AUTH_OPTIONS: [&str; 20] = [
    "auth_url",
    "username",
    "user_id",
    "password",
    "user_domain_id",
    "user_domain_name",
    "project_id",
    "project_name",
    "project_domain_id",
    "project_domain_name",
    "domain_id",
    "domain_name",
    "system_scope",
    "trust_id",
    "default_domain_id",
    "default_domain_name",
    "token",
    "application_credential_id",
    "application_credential_name",
    "application_credential_secret",
];

/// The scope options every v3 plugin registers: `project_id` to `trust_id` of [`AUTH_OPTIONS`].
const SCOPE_OPTIONS: &[&str] = AUTH_OPTIONS.as_slice().split_at(6).1.split_at(8).0;

/// keystoneauth's session options (`register_session_conf_options`); the last two are accepted
/// and have no effect here.
pub const SESSION_OPTIONS: [&str; 7] = [
    "cafile",
    "certfile",
    "keyfile",
    "insecure",
    "timeout",
    "collect_timing",
    "split_loggers",
];

pub(crate) const AUTH_TYPES: &str = "password, v3password, token, v3token, v3applicationcredential";

impl AuthType {
    /// Reads an `auth_type`; `None` for a type Baton's client does not have.
    pub fn parse(s: &str) -> Option<AuthType> {
        match s {
            "password" => Some(AuthType::Password),
            "v3password" => Some(AuthType::V3Password),
            "token" => Some(AuthType::Token),
            "v3token" => Some(AuthType::V3Token),
            "v3applicationcredential" => Some(AuthType::V3ApplicationCredential),
            _ => None,
        }
    }

    /// The `auth_type` spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            AuthType::Password => "password",
            AuthType::V3Password => "v3password",
            AuthType::Token => "token",
            AuthType::V3Token => "v3token",
            AuthType::V3ApplicationCredential => "v3applicationcredential",
        }
    }

    /// Whether the plugin discovers the v3 endpoint (keystoneauth's generic plugins).
    pub fn discovers(self) -> bool {
        matches!(self, AuthType::Password | AuthType::Token)
    }

    /// Whether keystoneauth registers `option` for this type.
    fn knows(self, option: &str) -> bool {
        let password = matches!(self, AuthType::Password | AuthType::V3Password);
        let app_cred = self == AuthType::V3ApplicationCredential;
        AUTH_OPTIONS.contains(&option)
            && match option {
                "password" => password,
                "token" => matches!(self, AuthType::Token | AuthType::V3Token),
                "user_id" | "username" | "user_domain_id" | "user_domain_name" => {
                    password || app_cred
                }
                "default_domain_id" | "default_domain_name" => self.discovers(),
                o if o.starts_with("application_credential_") => app_cred,
                // auth_url and the scope options
                _ => true,
            }
    }
}

/// What a plugin authenticates with.
#[derive(Debug, Clone)]
pub enum Credentials {
    /// A user and password (`password`, `v3password`).
    Password {
        /// The user, by id or by name within a domain.
        user: UserRef,
        /// The user's password.
        password: SecretString,
    },
    /// An existing token (`token`, `v3token`).
    Token {
        /// The token to authenticate with.
        token: AuthToken,
    },
    /// An application credential (`v3applicationcredential`), which carries its own scope and
    /// roles.
    ApplicationCredential {
        /// The credential, by id or by name with its owner.
        credential: AppCredRef,
        /// The credential's secret.
        secret: SecretString,
    },
}

/// Auth options read from a section: enough to build the plugin.
#[derive(Debug, Clone)]
pub struct AuthConfig {
    /// The plugin type (`auth_type`).
    pub auth_type: AuthType,
    /// The section the options were read from (the `auth_section` target, if any).
    pub section: String,
    /// The identity endpoint to authenticate at (`auth_url`).
    pub auth_url: Url,
    /// What to authenticate with.
    pub credentials: Credentials,
    /// What the token is scoped to: a project (the service project for a service user), a
    /// domain or the system.
    pub scope: Scope,
}

/// Session options of a section (keystoneauth's `register_session_conf_options`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SessionConfig {
    /// CA bundle to trust (`cafile`).
    pub cafile: Option<PathBuf>,
    /// Client certificate (`certfile`).
    pub certfile: Option<PathBuf>,
    /// Client certificate's key (`keyfile`).
    pub keyfile: Option<PathBuf>,
    /// Skip TLS verification (`insecure`), with a warning.
    pub insecure: bool,
    /// `timeout` in seconds.
    pub timeout: Option<Duration>,
}

/// Where auth options come from: one `[section]` of an oslo INI file ([`SectionReader`]), or one
/// cloud of clouds.yaml with the `OS_*` environment and the command line over it
/// ([`crate::clouds`]). The rules are [`AuthConfig::resolve`]'s; a source reads values and words
/// the errors the way its users know it.
pub(crate) trait OptionSource {
    /// Where a value was set, for errors.
    type Origin;
    /// The source's one-line error.
    type Error;

    /// What [`AuthConfig::section`] records.
    fn name(&self) -> String;

    /// The value of `option` and where it was set; `None` when unset or empty (keystoneauth's
    /// rule).
    fn get(&self, option: &str) -> Result<Option<(String, Self::Origin)>, Self::Error>;

    /// The error for `problem`.
    fn error(&self, problem: AuthProblem<Self::Origin>) -> Self::Error;

    /// Whether a scope option next to an application credential is an error (INI sections) or
    /// ignored (clouds.yaml: openstacksdk drops the options a plugin does not register).
    fn rejects_scope_with_application_credential(&self) -> bool {
        true
    }
}

/// What [`AuthConfig::resolve`] found wrong, for the [`OptionSource`] to word.
#[derive(Debug)]
pub(crate) enum AuthProblem<O> {
    /// `auth_type` names no plugin Baton loads.
    UnknownType { text: String, origin: O },
    /// `option` is required by `auth_type` and not set.
    Missing {
        option: &'static str,
        auth_type: AuthType,
    },
    /// `application_credential_name` is set without the user who owns it.
    MissingOwner {
        credential: String,
        auth_type: AuthType,
    },
    /// `auth_url` does not parse.
    NotUrl {
        text: String,
        origin: O,
        reason: String,
    },
    /// `auth_url` is not an http(s) URL.
    NotHttp { text: String, origin: O },
    /// `username` has no user domain, nor a default domain.
    UserDomain {
        username: String,
        origin: O,
        auth_type: AuthType,
    },
    /// `project_name` has no project domain, nor a default domain.
    ProjectDomain { name: String, origin: O },
    /// `system_scope` is not `all`.
    SystemScope { value: String, origin: O },
    /// More than one scope is set; each entry is the option that set one.
    Scopes { options: Vec<&'static str> },
    /// A scope option next to an application credential, which carries its own scope.
    ScopeWithApplicationCredential { option: &'static str, origin: O },
}

fn domain<S: OptionSource>(
    source: &S,
    id_opt: &str,
    name_opt: &str,
) -> Result<Option<DomainRef>, S::Error> {
    if let Some((id, _)) = source.get(id_opt)? {
        return Ok(Some(DomainRef::Id(id)));
    }
    Ok(source.get(name_opt)?.map(|(name, _)| DomainRef::Name(name)))
}

/// `user_id`, or `username` in `user_domain_id`/`user_domain_name` (else the default domain).
fn user<S: OptionSource>(
    source: &S,
    default_domain: &Option<DomainRef>,
    auth_type: AuthType,
) -> Result<Option<UserRef>, S::Error> {
    if let Some((id, _)) = source.get("user_id")? {
        return Ok(Some(UserRef::Id(id)));
    }
    let Some((name, origin)) = source.get("username")? else {
        return Ok(None);
    };
    let domain = match domain(source, "user_domain_id", "user_domain_name")? {
        Some(d) => d,
        None => match default_domain {
            Some(d) => d.clone(),
            None => {
                return Err(source.error(AuthProblem::UserDomain {
                    username: name,
                    origin,
                    auth_type,
                }))
            }
        },
    };
    Ok(Some(UserRef::Name { name, domain }))
}

/// `auth_url`: required, and an http(s) URL.
fn auth_url<S: OptionSource>(source: &S, auth_type: AuthType) -> Result<Url, S::Error> {
    let (text, origin) = source.get("auth_url")?.ok_or_else(|| {
        source.error(AuthProblem::Missing {
            option: "auth_url",
            auth_type,
        })
    })?;
    match Url::parse(&text) {
        Ok(url) if matches!(url.scheme(), "http" | "https") => Ok(url),
        Ok(_) => Err(source.error(AuthProblem::NotHttp { text, origin })),
        Err(e) => {
            let reason = e.to_string();
            Err(source.error(AuthProblem::NotUrl {
                text,
                origin,
                reason,
            }))
        }
    }
}

/// `v3applicationcredential`: the secret and the credential by id, or by name with its
/// owner (a user and that user's domain). The credential carries its own scope, so a scope
/// option is refused where the source says so.
fn application_credential<S: OptionSource>(
    source: &S,
    default_domain: &Option<DomainRef>,
    auth_type: AuthType,
) -> Result<Credentials, S::Error> {
    let missing = |option| source.error(AuthProblem::Missing { option, auth_type });
    if source.rejects_scope_with_application_credential() {
        for &option in SCOPE_OPTIONS {
            if let Some((_, origin)) = source.get(option)? {
                return Err(
                    source.error(AuthProblem::ScopeWithApplicationCredential { option, origin })
                );
            }
        }
    }
    let (secret, _) = source
        .get("application_credential_secret")?
        .ok_or_else(|| missing("application_credential_secret"))?;
    let credential = if let Some((id, _)) = source.get("application_credential_id")? {
        AppCredRef::Id(id)
    } else if let Some((name, _)) = source.get("application_credential_name")? {
        let Some(user) = user(source, default_domain, auth_type)? else {
            return Err(source.error(AuthProblem::MissingOwner {
                credential: name,
                auth_type,
            }));
        };
        AppCredRef::Name { name, user }
    } else {
        return Err(missing("application_credential_id"));
    };
    Ok(Credentials::ApplicationCredential {
        credential,
        secret: SecretString::new(secret),
    })
}

/// At most one of project, domain, system and trust scope (keystoneauth refuses more).
fn scope<S: OptionSource>(
    source: &S,
    default_domain: &Option<DomainRef>,
) -> Result<Scope, S::Error> {
    let mut scopes: Vec<(&'static str, Scope)> = Vec::new();
    if let Some((id, _)) = source.get("trust_id")? {
        scopes.push(("trust_id", Scope::Trust(id)));
    }
    if let Some((id, _)) = source.get("project_id")? {
        scopes.push(("project_id", Scope::project_id(id)));
    } else if let Some((name, origin)) = source.get("project_name")? {
        let domain = match domain(source, "project_domain_id", "project_domain_name")? {
            Some(d) => d,
            None => match default_domain {
                Some(d) => d.clone(),
                None => return Err(source.error(AuthProblem::ProjectDomain { name, origin })),
            },
        };
        scopes.push((
            "project_name",
            Scope::Project(ProjectRef::Name { name, domain }),
        ));
    }
    if let Some(d) = domain(source, "domain_id", "domain_name")? {
        let opt = if matches!(d, DomainRef::Id(_)) {
            "domain_id"
        } else {
            "domain_name"
        };
        scopes.push((opt, Scope::Domain(d)));
    }
    if let Some((value, origin)) = source.get("system_scope")? {
        if value != "all" {
            return Err(source.error(AuthProblem::SystemScope { value, origin }));
        }
        scopes.push(("system_scope", Scope::System));
    }
    match scopes.len() {
        0 => Ok(Scope::Default),
        1 => Ok(scopes.remove(0).1),
        _ => Err(source.error(AuthProblem::Scopes {
            options: scopes.iter().map(|(o, _)| *o).collect(),
        })),
    }
}

/// An INI section's auth options; errors name file, line, section and option.
impl<'a> OptionSource for SectionReader<'a> {
    type Origin = &'a Value;
    type Error = ConfigError;

    fn name(&self) -> String {
        self.section().to_string()
    }

    fn get(&self, option: &str) -> Result<Option<(String, &'a Value)>, ConfigError> {
        self.text(option)
    }

    fn error(&self, problem: AuthProblem<&'a Value>) -> ConfigError {
        let section = self.section();
        match problem {
            AuthProblem::UnknownType { origin, .. } => origin.error(
                section,
                "auth_type",
                format!("unknown auth type; Baton loads {AUTH_TYPES}"),
            ),
            AuthProblem::Missing { option, auth_type } => {
                let t = auth_type.as_str();
                let why = match option {
                    "auth_url" => format!(
                        "auth_type = {t} needs the identity URL, e.g. http://controller:5000/v3"
                    ),
                    "username" => {
                        format!("auth_type = {t} needs username (with user_domain_name) or user_id")
                    }
                    "application_credential_id" => format!("auth_type = {t} needs application_credential_id, or application_credential_name with its user"),
                    _ => format!("auth_type = {t} needs it"),
                };
                self.missing(option, &why)
            }
            AuthProblem::MissingOwner { credential, .. } => self.missing(
                "username",
                &format!("application_credential_name = {credential} needs its owner: username (with user_domain_name) or user_id"),
            ),
            AuthProblem::NotUrl { origin, reason, .. } => {
                origin.error(section, "auth_url", format!("not a URL: {reason}"))
            }
            AuthProblem::NotHttp { origin, .. } => {
                origin.error(section, "auth_url", "must be an http:// or https:// URL")
            }
            AuthProblem::UserDomain {
                username,
                auth_type,
                ..
            } => self.missing(
                "user_domain_name",
                &format!(
                    "username = {username} needs user_domain_name or user_domain_id (auth_type = {})",
                    auth_type.as_str()
                ),
            ),
            AuthProblem::ProjectDomain { name, .. } => self.missing(
                "project_domain_name",
                &format!("project_name = {name} needs project_domain_name or project_domain_id"),
            ),
            AuthProblem::SystemScope { origin, .. } => {
                origin.error(section, "system_scope", "the only system scope is `all`")
            }
            AuthProblem::Scopes { options } => self.error(format!(
                "options {} each set a scope; set only one",
                options.join(", ")
            )),
            AuthProblem::ScopeWithApplicationCredential { option, origin } => origin.error(
                section,
                option,
                "an application credential carries its own scope; remove this option",
            ),
        }
    }
}

impl AuthConfig {
    /// Reads the auth options of `section` (following `auth_section`). `Ok(None)` when no
    /// `auth_type` is set.
    pub fn from_ini(ini: &IniFile, section: &str) -> Result<Option<AuthConfig>, ConfigError> {
        let here = ini.reader(section);
        let reader = match here.text("auth_section")? {
            Some((target, value)) => match ini.section(&target) {
                Some(s) => ini.reader(s.name()),
                None => return Err(value.error(section, "auth_section", "no such section")),
            },
            None => here,
        };
        match reader.text("auth_type")? {
            Some(auth_type) => AuthConfig::resolve(&reader, auth_type).map(Some),
            None => Ok(None),
        }
    }

    /// The auth options of `source` for `auth_type` (its text, and where it was set), with
    /// keystoneauth's rules: the credentials each type needs, a user or project by name needs
    /// its domain (the generic types fall back to `default_domain_id`/`default_domain_name`),
    /// at most one scope (project, domain, system or trust); an application credential carries
    /// its own scope.
    pub(crate) fn resolve<S: OptionSource>(
        source: &S,
        auth_type: (String, S::Origin),
    ) -> Result<AuthConfig, S::Error> {
        let (type_text, type_origin) = auth_type;
        let Some(auth_type) = AuthType::parse(&type_text) else {
            return Err(source.error(AuthProblem::UnknownType {
                text: type_text,
                origin: type_origin,
            }));
        };
        let missing = |option| source.error(AuthProblem::Missing { option, auth_type });
        let auth_url = auth_url(source, auth_type)?;
        let default_domain = if auth_type.discovers() {
            domain(source, "default_domain_id", "default_domain_name")?
        } else {
            None
        };
        let (credentials, scope) = match auth_type {
            AuthType::Password | AuthType::V3Password => {
                let user =
                    user(source, &default_domain, auth_type)?.ok_or_else(|| missing("username"))?;
                let (password, _) = source.get("password")?.ok_or_else(|| missing("password"))?;
                (
                    Credentials::Password {
                        user,
                        password: SecretString::new(password),
                    },
                    scope(source, &default_domain)?,
                )
            }
            AuthType::Token | AuthType::V3Token => {
                let (token, _) = source.get("token")?.ok_or_else(|| missing("token"))?;
                (
                    Credentials::Token {
                        token: AuthToken::new(token),
                    },
                    scope(source, &default_domain)?,
                )
            }
            AuthType::V3ApplicationCredential => (
                application_credential(source, &default_domain, auth_type)?,
                Scope::Default,
            ),
        };
        Ok(AuthConfig {
            auth_type,
            section: source.name(),
            auth_url,
            credentials,
            scope,
        })
    }

    /// A new plugin for these options (keep it: it caches its token).
    pub fn plugin(&self) -> Arc<dyn AuthPlugin> {
        let url = self.auth_url.clone();
        let discover = self.auth_type.discovers();
        match &self.credentials {
            Credentials::Password { user, password } => Arc::new(
                Password::new(url, user.clone(), password.clone())
                    .with_scope(self.scope.clone())
                    .with_discovery(discover),
            ),
            Credentials::Token { token } => Arc::new(
                Token::new(url, token.clone())
                    .with_scope(self.scope.clone())
                    .with_discovery(discover),
            ),
            Credentials::ApplicationCredential { credential, secret } => Arc::new(
                ApplicationCredential::new(url, credential.clone(), secret.clone())
                    .with_discovery(discover),
            ),
        }
    }
}

impl SessionConfig {
    /// Reads `cafile`, `certfile`/`keyfile`, `insecure` and `timeout` of `section`. The files
    /// the client will read must be readable now, so that a typo stops the start rather than the
    /// first call; as in keystoneauth, `insecure = true` leaves `cafile` unread (and unchecked).
    /// `baton doctor` reads the section through here too, so both check the same files.
    pub fn from_ini(ini: &IniFile, section: &str) -> Result<SessionConfig, ConfigError> {
        let r = ini.reader(section);
        let file = |opt: &str| -> Result<Option<PathBuf>, ConfigError> {
            match r.text(opt)? {
                None => Ok(None),
                Some((path, value)) => match std::fs::metadata(&path) {
                    Ok(m) if m.is_file() => match std::fs::File::open(&path) {
                        Ok(_) => Ok(Some(PathBuf::from(path))),
                        Err(e) => Err(value.error(section, opt, format!("cannot read: {e}"))),
                    },
                    Ok(_) => Err(value.error(section, opt, "not a file")),
                    Err(e) => Err(value.error(section, opt, format!("cannot read: {e}"))),
                },
            }
        };
        let insecure = r.bool("insecure")?.unwrap_or(false);
        let cafile = if insecure { None } else { file("cafile")? };
        let certfile = file("certfile")?;
        let keyfile = file("keyfile")?;
        if certfile.is_some() != keyfile.is_some() {
            let (set, unset) = if certfile.is_some() {
                ("certfile", "keyfile")
            } else {
                ("keyfile", "certfile")
            };
            return Err(r.missing(
                unset,
                &format!("{set} is set, and a client certificate needs both"),
            ));
        }
        let timeout = r
            .int("timeout", 0, i64::MAX)?
            .filter(|t| *t > 0)
            .map(Duration::from_secs);
        Ok(SessionConfig {
            cafile,
            certfile,
            keyfile,
            insecure,
            timeout,
        })
    }

    /// HTTP options: these settings over the defaults.
    pub fn http_options(&self) -> HttpOptions {
        let mut o = HttpOptions {
            ca_file: self.cafile.clone(),
            insecure: self.insecure,
            ..HttpOptions::default()
        };
        if let (Some(c), Some(k)) = (&self.certfile, &self.keyfile) {
            o.client_cert = Some((c.clone(), k.clone()));
        }
        if let Some(t) = self.timeout {
            o.timeout = Some(t);
        }
        o
    }
}

/// `[service_user]` of Nova and Cinder: whether to send service tokens and as whom.
#[derive(Debug, Clone)]
pub struct ServiceUserConfig {
    /// The configuration files, for messages.
    pub source: String,
    /// The section read (`service_user`).
    pub section: String,
    /// The service user's auth options.
    pub auth: AuthConfig,
    /// The session options of the calls made with the service token.
    pub session: SessionConfig,
}

/// What [`ServiceUserConfig::validate_at_startup`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StartupCheck {
    /// The service user's id.
    pub user_id: String,
    /// The service user's name.
    pub user_name: String,
    /// The project its token is scoped to.
    pub project_id: Option<String>,
    /// The roles its token holds (receivers want one of their `service_token_roles`).
    pub roles: Vec<String>,
    /// When the token obtained at start expires.
    pub expires_at: DateTime<Utc>,
    /// Problems that do not stop the start (each also logged as a warning).
    pub warnings: Vec<String>,
}

impl ServiceUserConfig {
    /// Reads `section` (`"service_user"`). `Ok(None)` when `send_service_user_token` is false or
    /// unset; with it true, missing or broken auth options are an error, never a silent
    /// fall-back to user-only calls.
    pub fn from_ini(
        ini: &IniFile,
        section: &str,
    ) -> Result<Option<ServiceUserConfig>, ConfigError> {
        let r = ini.reader(section);
        let send_opt = r.option("send_service_user_token");
        let send = send_opt.bool()?.unwrap_or(false);
        if !send {
            if r.value("auth_type").is_some() || r.value("auth_section").is_some() {
                tracing::info!(
                    section,
                    "[{section}] has auth options but send_service_user_token is false: no service tokens will be sent"
                );
            }
            return Ok(None);
        }
        let Some(auth) = AuthConfig::from_ini(ini, section)? else {
            let where_ = match r.value("auth_section") {
                Some(v) => format!(" (looked in [{}], named by auth_section)", v.raw().trim()),
                None => String::new(),
            };
            let value = send_opt.value().expect("send_service_user_token is set");
            return Err(value.error(
                section,
                "send_service_user_token",
                format!("auth_type is not set{where_}; set auth_type = password and its options (auth_url, username, password, ...), or send_service_user_token = false"),
            ));
        };
        let session = SessionConfig::from_ini(ini, section)?;
        if auth.section.eq_ignore_ascii_case(section) {
            if let Some(s) = ini.section(section) {
                for name in s.option_names() {
                    let ok = auth.auth_type.knows(name)
                        || SESSION_OPTIONS.contains(&name)
                        || matches!(
                            name,
                            "auth_type"
                                | "auth_section"
                                | "send_service_user_token"
                                | "auth_strategy"
                        );
                    if !ok {
                        tracing::warn!(
                            "[{section}] {name} is not an option of auth_type = {}: ignored",
                            auth.auth_type.as_str()
                        );
                    }
                }
            }
        }
        Ok(Some(ServiceUserConfig {
            source: ini.sources().collect::<Vec<_>>().join(", "),
            section: section.to_string(),
            auth,
            session,
        }))
    }

    /// A new auth plugin for the service user. Keep one per process: it caches the token.
    pub fn auth_plugin(&self) -> Arc<dyn AuthPlugin> {
        self.auth.plugin()
    }

    /// A session authenticated as the service user, with the section's session options.
    pub fn session(&self) -> Result<Session> {
        Session::builder()
            .http_options(self.session.http_options())
            .build(self.auth_plugin())
    }

    fn context(&self) -> String {
        if self.source.is_empty() {
            format!("[{}]", self.section)
        } else {
            format!("[{}] in {}", self.section, self.source)
        }
    }

    /// Authenticates once as the service user and checks that its token holds the `service`
    /// role (keystonemiddleware's default `service_token_roles`). Any failure — wrong
    /// `auth_url`, bad password, a user without the role — is an error that should stop the
    /// service's start: otherwise every onward call would carry a service token the receivers
    /// refuse, which only shows once a user token expires mid-operation.
    pub async fn validate_at_startup(&self) -> Result<StartupCheck> {
        self.validate_at_startup_with_roles(&[SERVICE_ROLE]).await
    }

    /// [`ServiceUserConfig::validate_at_startup`] for receivers configured with other
    /// `service_token_roles`: the token must hold one of `roles` (none: no role check).
    pub async fn validate_at_startup_with_roles(&self, roles: &[&str]) -> Result<StartupCheck> {
        let session = self.session().map_err(|e| Error::Startup {
            context: format!("{}: cannot set up the HTTP session", self.context()),
            source: Box::new(e),
        })?;
        self.validate_session_at_startup(&session, roles).await
    }

    /// The start-up check on a session made by [`ServiceUserConfig::session`], which keeps the
    /// service user's token for later use.
    pub async fn validate_session_at_startup(
        &self,
        session: &Session,
        roles: &[&str],
    ) -> Result<StartupCheck> {
        let access = session.get_access().await.map_err(|e| Error::Startup {
            context: format!("{}: cannot authenticate the service user", self.context()),
            source: Box::new(e),
        })?;
        let held: Vec<String> = access.role_names().iter().map(|r| r.to_string()).collect();
        let mut warnings = Vec::new();
        if self.session.insecure {
            let w = format!(
                "{}: insecure = true: the identity server's certificate is not verified",
                self.context()
            );
            tracing::warn!("{w}");
            warnings.push(w);
        }
        if !roles.is_empty() && !roles.iter().any(|r| access.has_role(r)) {
            let scope = match (access.project_name(), access.domain_name()) {
                (Some(p), _) => format!("on project {p}"),
                (None, Some(d)) => format!("on domain {d}"),
                _ if access.system_scoped() => "on the system".to_string(),
                _ => "(unscoped token: set project_name and project_domain_name)".to_string(),
            };
            return Err(Error::Startup {
                context: format!("{}: service user {} ({})", self.context(), access.user_name(), access.user_id()),
                source: Box::new(Error::NotAvailable(format!(
                    "has roles [{}] {scope} but none of [{}]; receivers (service_token_roles) would refuse its X-Service-Token, so calls would fail once a user token expires; grant it, e.g. `openstack role add --user {} --project {} {}`",
                    held.join(", "),
                    roles.join(", "),
                    access.user_name(),
                    access.project_name().unwrap_or("<project>"),
                    roles[0],
                ))),
            });
        }
        Ok(StartupCheck {
            user_id: access.user_id().to_string(),
            user_name: access.user_name().to_string(),
            project_id: access.project_id().map(str::to_string),
            roles: held,
            expires_at: access.expires_at(),
            warnings,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scope_options_are_the_scope_part_of_auth_options() {
        // A reordering of AUTH_OPTIONS must not shift the slice.
        assert_eq!(
            (SCOPE_OPTIONS.first(), SCOPE_OPTIONS.last()),
            (Some(&"project_id"), Some(&"trust_id"))
        );
        assert!(SCOPE_OPTIONS
            .iter()
            .all(|o| ["project_", "domain_", "system_", "trust_"]
                .iter()
                .any(|p| o.starts_with(p))));
    }
}
