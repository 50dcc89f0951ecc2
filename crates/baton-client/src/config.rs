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

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use baton_config::{ConfigError, ConfigErrorKind, IniFile, Origin, Value};
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

/// The scope options every v3 plugin registers.
const SCOPE_OPTIONS: [&str; 8] = [
    "project_id",
    "project_name",
    "project_domain_id",
    "project_domain_name",
    "domain_id",
    "domain_name",
    "system_scope",
    "trust_id",
];

const AUTH_TYPES: &str = "password, v3password, token, v3token, v3applicationcredential";

impl AuthType {
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
        const USER: [&str; 4] = ["user_id", "username", "user_domain_id", "user_domain_name"];
        const DEFAULT_DOMAIN: [&str; 2] = ["default_domain_id", "default_domain_name"];
        const APP_CRED: [&str; 3] = [
            "application_credential_id",
            "application_credential_name",
            "application_credential_secret",
        ];
        option == "auth_url"
            || SCOPE_OPTIONS.contains(&option)
            || (self.discovers() && DEFAULT_DOMAIN.contains(&option))
            || match self {
                AuthType::Password | AuthType::V3Password => {
                    USER.contains(&option) || option == "password"
                }
                AuthType::Token | AuthType::V3Token => option == "token",
                AuthType::V3ApplicationCredential => {
                    USER.contains(&option) || APP_CRED.contains(&option)
                }
            }
    }
}

/// What a plugin authenticates with.
#[derive(Debug, Clone)]
pub enum Credentials {
    Password {
        user: UserRef,
        password: SecretString,
    },
    Token {
        token: AuthToken,
    },
    ApplicationCredential {
        credential: AppCredRef,
        secret: SecretString,
    },
}

/// Auth options read from a section: enough to build the plugin.
#[derive(Debug, Clone)]
pub struct AuthConfig {
    pub auth_type: AuthType,
    /// The section the options were read from (the `auth_section` target, if any).
    pub section: String,
    pub auth_url: Url,
    pub credentials: Credentials,
    pub scope: Scope,
}

/// Session options of a section (keystoneauth's `register_session_conf_options`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SessionConfig {
    pub cafile: Option<PathBuf>,
    pub certfile: Option<PathBuf>,
    pub keyfile: Option<PathBuf>,
    pub insecure: bool,
    /// `timeout` in seconds.
    pub timeout: Option<Duration>,
}

/// Session options keystoneauth registers; the last two are accepted and have no effect here.
const SESSION_OPTIONS: [&str; 7] = [
    "cafile",
    "certfile",
    "keyfile",
    "insecure",
    "timeout",
    "collect_timing",
    "split_loggers",
];

/// Reads one section with keystoneauth's "empty means unset" rule.
struct Reader<'a> {
    ini: &'a IniFile,
    section: String,
}

impl<'a> Reader<'a> {
    /// A non-empty value, trimmed, with `$option` substitution.
    fn get(&self, option: &str) -> Result<Option<(String, &'a Value)>, ConfigError> {
        let ini: &'a IniFile = self.ini;
        let Some(value) = ini.get(&self.section, option) else {
            return Ok(None);
        };
        let text = ini
            .option(&self.section, option)
            .string()?
            .unwrap_or_default();
        let text = text.trim().to_string();
        Ok((!text.is_empty()).then_some((text, value)))
    }

    fn string(&self, option: &str) -> Result<Option<String>, ConfigError> {
        Ok(self.get(option)?.map(|(s, _)| s))
    }

    fn origin(&self) -> Origin {
        self.ini
            .section(&self.section)
            .map(|s| s.origin().clone())
            .unwrap_or_else(|| Origin::Environment {
                var: format!("(no [{}] section)", self.section),
            })
    }

    /// An option that must be set and is not.
    fn missing(&self, option: &str, why: &str) -> ConfigError {
        ConfigErrorKind::Section {
            origin: self.origin(),
            section: self.section.clone(),
            reason: format!("option {option} is not set: {why}"),
        }
        .into()
    }

    /// A whole-section problem.
    fn section_error(&self, reason: String) -> ConfigError {
        ConfigErrorKind::Section {
            origin: self.origin(),
            section: self.section.clone(),
            reason,
        }
        .into()
    }

    fn domain(&self, id_opt: &str, name_opt: &str) -> Result<Option<DomainRef>, ConfigError> {
        if let Some(id) = self.string(id_opt)? {
            return Ok(Some(DomainRef::Id(id)));
        }
        Ok(self.string(name_opt)?.map(DomainRef::Name))
    }

    fn user(
        &self,
        default_domain: &Option<DomainRef>,
        auth_type: AuthType,
    ) -> Result<Option<UserRef>, ConfigError> {
        if let Some(id) = self.string("user_id")? {
            return Ok(Some(UserRef::Id(id)));
        }
        let Some(name) = self.string("username")? else {
            return Ok(None);
        };
        let domain = match self.domain("user_domain_id", "user_domain_name")? {
            Some(d) => d,
            None => match default_domain {
                Some(d) => d.clone(),
                None => {
                    return Err(self.missing(
                        "user_domain_name",
                        &format!(
                            "username = {name} needs user_domain_name or user_domain_id (auth_type = {})",
                            auth_type.as_str()
                        ),
                    ))
                }
            },
        };
        Ok(Some(UserRef::Name { name, domain }))
    }

    fn scope(&self, default_domain: &Option<DomainRef>) -> Result<Scope, ConfigError> {
        if let Some((_, v)) = self.get("trust_id")? {
            return Err(v.error(
                &self.section,
                "trust_id",
                "trusts are not supported by Baton",
            ));
        }
        let mut scopes: Vec<(&str, Scope)> = Vec::new();
        if let Some(id) = self.string("project_id")? {
            scopes.push(("project_id", Scope::project_id(id)));
        } else if let Some(name) = self.string("project_name")? {
            let domain = match self.domain("project_domain_id", "project_domain_name")? {
                Some(d) => d,
                None => match default_domain {
                    Some(d) => d.clone(),
                    None => {
                        return Err(self.missing(
                            "project_domain_name",
                            &format!(
                            "project_name = {name} needs project_domain_name or project_domain_id"
                        ),
                        ))
                    }
                },
            };
            scopes.push((
                "project_name",
                Scope::Project(ProjectRef::Name { name, domain }),
            ));
        }
        if let Some(d) = self.domain("domain_id", "domain_name")? {
            let opt = if matches!(d, DomainRef::Id(_)) {
                "domain_id"
            } else {
                "domain_name"
            };
            scopes.push((opt, Scope::Domain(d)));
        }
        if let Some((s, v)) = self.get("system_scope")? {
            if s != "all" {
                return Err(v.error(
                    &self.section,
                    "system_scope",
                    "the only system scope is `all`",
                ));
            }
            scopes.push(("system_scope", Scope::System));
        }
        match scopes.len() {
            0 => Ok(Scope::Default),
            1 => Ok(scopes.remove(0).1),
            _ => Err(self.section_error(format!(
                "options {} each set a scope; set only one",
                scopes
                    .iter()
                    .map(|(o, _)| *o)
                    .collect::<Vec<_>>()
                    .join(", ")
            ))),
        }
    }
}

impl AuthConfig {
    /// Reads the auth options of `section` (following `auth_section`). `Ok(None)` when no
    /// `auth_type` is set.
    pub fn from_ini(ini: &IniFile, section: &str) -> Result<Option<AuthConfig>, ConfigError> {
        let here = Reader {
            ini,
            section: section.to_string(),
        };
        let reader = match here.get("auth_section")? {
            Some((target, value)) => {
                let Some(s) = ini.section(&target) else {
                    return Err(value.error(section, "auth_section", "no such section"));
                };
                Reader {
                    ini,
                    section: s.name().to_string(),
                }
            }
            None => here,
        };
        let Some((name, type_value)) = reader.get("auth_type")? else {
            return Ok(None);
        };
        let auth_type = AuthType::parse(&name).ok_or_else(|| {
            type_value.error(
                &reader.section,
                "auth_type",
                format!("unknown auth type; Baton loads {AUTH_TYPES}"),
            )
        })?;
        let why_url =
            format!("auth_type = {name} needs the identity URL, e.g. http://controller:5000/v3");
        let (url_text, url_value) = reader
            .get("auth_url")?
            .ok_or_else(|| reader.missing("auth_url", &why_url))?;
        let auth_url = Url::parse(&url_text)
            .map_err(|e| url_value.error(&reader.section, "auth_url", format!("not a URL: {e}")))?;
        if !matches!(auth_url.scheme(), "http" | "https") {
            return Err(url_value.error(
                &reader.section,
                "auth_url",
                "must be an http:// or https:// URL",
            ));
        }
        let default_domain = if auth_type.discovers() {
            reader.domain("default_domain_id", "default_domain_name")?
        } else {
            None
        };
        let (credentials, scope) = match auth_type {
            AuthType::Password | AuthType::V3Password => {
                let user = reader.user(&default_domain, auth_type)?.ok_or_else(|| {
                    reader.missing(
                        "username",
                        &format!(
                            "auth_type = {name} needs username (with user_domain_name) or user_id"
                        ),
                    )
                })?;
                let password = reader.string("password")?.ok_or_else(|| {
                    reader.missing("password", &format!("auth_type = {name} needs it"))
                })?;
                (
                    Credentials::Password {
                        user,
                        password: SecretString::new(password),
                    },
                    reader.scope(&default_domain)?,
                )
            }
            AuthType::Token | AuthType::V3Token => {
                let token = reader.string("token")?.ok_or_else(|| {
                    reader.missing("token", &format!("auth_type = {name} needs it"))
                })?;
                (
                    Credentials::Token {
                        token: AuthToken::new(token),
                    },
                    reader.scope(&default_domain)?,
                )
            }
            AuthType::V3ApplicationCredential => {
                for opt in SCOPE_OPTIONS {
                    if let Some((_, v)) = reader.get(opt)? {
                        return Err(v.error(
                            &reader.section,
                            opt,
                            "an application credential carries its own scope; remove this option",
                        ));
                    }
                }
                let secret = reader
                    .string("application_credential_secret")?
                    .ok_or_else(|| {
                        reader.missing(
                            "application_credential_secret",
                            "auth_type = v3applicationcredential needs it",
                        )
                    })?;
                let credential = if let Some(id) = reader.string("application_credential_id")? {
                    AppCredRef::Id(id)
                } else if let Some(cred_name) = reader.string("application_credential_name")? {
                    let user = reader.user(&None, auth_type)?.ok_or_else(|| {
                        reader.missing(
                            "username",
                            &format!("application_credential_name = {cred_name} needs its owner: username (with user_domain_name) or user_id"),
                        )
                    })?;
                    AppCredRef::Name {
                        name: cred_name,
                        user,
                    }
                } else {
                    return Err(reader.missing(
                        "application_credential_id",
                        "auth_type = v3applicationcredential needs application_credential_id, or application_credential_name with its user",
                    ));
                };
                (
                    Credentials::ApplicationCredential {
                        credential,
                        secret: SecretString::new(secret),
                    },
                    Scope::Default,
                )
            }
        };
        Ok(Some(AuthConfig {
            auth_type,
            section: reader.section,
            auth_url,
            credentials,
            scope,
        }))
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
    /// Reads `cafile`, `certfile`/`keyfile`, `insecure` and `timeout` of `section`. Files must be
    /// readable now, so that a typo stops the start rather than the first call.
    pub fn from_ini(ini: &IniFile, section: &str) -> Result<SessionConfig, ConfigError> {
        let r = Reader {
            ini,
            section: section.to_string(),
        };
        let file = |opt: &str| -> Result<Option<PathBuf>, ConfigError> {
            match r.get(opt)? {
                None => Ok(None),
                Some((path, value)) => match std::fs::metadata(&path) {
                    Ok(m) if m.is_file() => Ok(Some(PathBuf::from(path))),
                    Ok(_) => Err(value.error(section, opt, "not a file")),
                    Err(e) => Err(value.error(section, opt, format!("cannot read: {e}"))),
                },
            }
        };
        let cafile = file("cafile")?;
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
        let insecure = ini.option(section, "insecure").bool()?.unwrap_or(false);
        let timeout = ini
            .option(section, "timeout")
            .int(Some(0), None)?
            .filter(|t| *t > 0)
            .map(|t| Duration::from_secs(t as u64));
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
    pub section: String,
    pub auth: AuthConfig,
    pub session: SessionConfig,
}

/// What [`ServiceUserConfig::validate_at_startup`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StartupCheck {
    pub user_id: String,
    pub user_name: String,
    pub project_id: Option<String>,
    pub roles: Vec<String>,
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
        let send_opt = ini.option(section, "send_service_user_token");
        let send = send_opt.bool()?.unwrap_or(false);
        if !send {
            if ini.get(section, "auth_type").is_some() || ini.get(section, "auth_section").is_some()
            {
                tracing::info!(
                    section,
                    "[{section}] has auth options but send_service_user_token is false: no service tokens will be sent"
                );
            }
            return Ok(None);
        }
        let Some(auth) = AuthConfig::from_ini(ini, section)? else {
            let where_ = match ini.get(section, "auth_section") {
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
