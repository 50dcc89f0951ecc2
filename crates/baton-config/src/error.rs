//! Where a configuration value came from, and the one-line error type.

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;

/// The place a section header or a value was read from.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Origin {
    /// A line of a configuration file (`name` is the path or source name as given).
    File {
        /// Path or source name, exactly as passed to `IniFile::load`/`IniFile::parse`.
        name: Arc<str>,
        /// 1-based line number of the `key = value` line or `[section]` header.
        line: usize,
    },
    /// An environment override such as `BATON__TOKEN__EXPIRATION`.
    Environment {
        /// Full variable name.
        var: String,
    },
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::File { name, line } => write!(f, "{name}:{line}"),
            Origin::Environment { var } => write!(f, "environment {var}"),
        }
    }
}

/// Where a client's cloud setting came from: `clouds.yaml`/`secure.yaml`, an `OS_*` variable or
/// a `--os-*` command-line option, read the way openstacksdk and python-openstackclient read
/// them (baton-client's `CloudLoader`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CloudOrigin {
    /// A clouds/secure file as a whole (it cannot be read or parsed, say).
    File {
        /// The file.
        path: PathBuf,
    },
    /// A key of a clouds/secure file, e.g. `clouds.prod.auth.auth_url`.
    Key {
        /// The file.
        path: PathBuf,
        /// The key within it.
        key: String,
    },
    /// An `OS_*` environment variable.
    Env(String),
    /// A command-line option, e.g. `--os-auth-url`.
    Arg(String),
    /// A default of python-openstackclient's.
    Default,
}

impl fmt::Display for CloudOrigin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CloudOrigin::File { path } => write!(f, "{}", path.display()),
            CloudOrigin::Key { path, key } => write!(f, "{}: {key}", path.display()),
            CloudOrigin::Env(v) => write!(f, "environment variable {v}"),
            CloudOrigin::Arg(a) => write!(f, "option {a}"),
            CloudOrigin::Default => f.write_str("default"),
        }
    }
}

/// A configuration error: a boxed [`ConfigErrorKind`] (boxed to keep
/// `Result<_, ConfigError>` small).
///
/// The `Display` form is always a single line that starts with the file and
/// line (or environment variable) so an operator can jump straight to it, e.g.
/// `keystone.conf:12: [token] expiration = "abc": not an integer`; a cloud's
/// error starts with the clouds.yaml key, variable or option when there is one,
/// e.g. `clouds.yaml: clouds.prod.auth.auth_url: "ks:5000" is not a URL: ...`.
/// Values of secret-looking options (passwords, secrets, database and
/// messaging URLs) are replaced by `<redacted>` when the error is built, so
/// neither `Display` nor `Debug` leaks them.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(transparent)]
pub struct ConfigError(Box<ConfigErrorKind>);

/// Everything that can go wrong while reading configuration.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigErrorKind {
    /// A configuration file could not be read.
    #[error("{path}: cannot read configuration file: {reason}")]
    Read {
        /// Path as given.
        path: String,
        /// The operating system's explanation.
        reason: String,
    },
    /// A line that the oslo.config grammar does not allow.
    #[error("{origin}: {reason}: {line:?}")]
    Syntax {
        /// File and line.
        origin: Origin,
        /// The offending line (trailing whitespace removed).
        line: String,
        /// What is wrong with it.
        reason: String,
    },
    /// An option whose value is invalid, or an option that is not allowed at all.
    #[error("{origin}: [{section}] {option} = {value}: {reason}")]
    Value {
        /// Where the value was set.
        origin: Origin,
        /// Section the option was found in.
        section: String,
        /// Option name as written.
        option: String,
        /// The value, already quoted (or `<redacted>`) for display.
        value: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A section that is not allowed.
    #[error("{origin}: [{section}]: {reason}")]
    Section {
        /// Where the section header (or its first override) is.
        origin: Origin,
        /// Section name as written.
        section: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A `BATON__...` environment variable whose name is malformed.
    #[error("environment {var}: {reason}")]
    Environment {
        /// Full variable name.
        var: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A client's cloud that cannot be read or resolved (clouds.yaml, secure.yaml, `OS_*`
    /// variables, `--os-*` options). Never holds a secret.
    #[error("{}", CloudLine(.origin.as_ref(), .reason))]
    Cloud {
        /// The setting at fault, when one is (a missing option or an unknown cloud has none).
        origin: Option<CloudOrigin>,
        /// What is wrong.
        reason: String,
    },
}

/// `origin: reason`, or the reason alone.
struct CloudLine<'a>(Option<&'a CloudOrigin>, &'a str);

impl fmt::Display for CloudLine<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(origin) => write!(f, "{origin}: {}", self.1),
            None => f.write_str(self.1),
        }
    }
}

impl From<ConfigErrorKind> for ConfigError {
    fn from(kind: ConfigErrorKind) -> Self {
        ConfigError(Box::new(kind))
    }
}

impl ConfigError {
    /// What went wrong, for callers that need more than the message.
    pub fn kind(&self) -> &ConfigErrorKind {
        &self.0
    }

    /// Builds a [`ConfigErrorKind::Value`], quoting the value and redacting secrets.
    pub fn value(
        origin: &Origin,
        section: &str,
        option: &str,
        raw_value: &str,
        reason: impl Into<String>,
    ) -> Self {
        ConfigErrorKind::Value {
            origin: origin.clone(),
            section: section.to_owned(),
            option: option.to_owned(),
            value: display_value(option, raw_value),
            reason: reason.into(),
        }
        .into()
    }

    /// A [`ConfigErrorKind::Cloud`]: `reason` about the setting at `origin` (`None` for a
    /// problem of the cloud as a whole).
    pub fn cloud(origin: impl Into<Option<CloudOrigin>>, reason: impl Into<String>) -> Self {
        ConfigErrorKind::Cloud {
            origin: origin.into(),
            reason: reason.into(),
        }
        .into()
    }

    /// The INI file/line or environment variable the error points at, if any.
    pub fn origin(&self) -> Option<&Origin> {
        match self.kind() {
            ConfigErrorKind::Syntax { origin, .. }
            | ConfigErrorKind::Value { origin, .. }
            | ConfigErrorKind::Section { origin, .. } => Some(origin),
            ConfigErrorKind::Read { .. }
            | ConfigErrorKind::Environment { .. }
            | ConfigErrorKind::Cloud { .. } => None,
        }
    }
}

/// Options whose values must never be echoed back in error messages.
const SECRET_OPTIONS: &[&str] = &[
    "connection",
    "slave_connection",
    "asyncio_connection",
    "asyncio_slave_connection",
    "transport_url",
    "admin_token",
];

/// Whether an option's value should be hidden from messages and logs:
/// `password`, `*_password`, anything containing `secret`, database
/// connection URLs, `transport_url` and `admin_token`.
pub fn is_secret_option(option: &str) -> bool {
    let lower = option.to_ascii_lowercase();
    lower == "password"
        || lower.ends_with("_password")
        || lower.contains("secret")
        || SECRET_OPTIONS.contains(&lower.as_str())
}

/// Quotes a value for a one-line message, or hides it for secret options.
pub(crate) fn display_value(option: &str, raw: &str) -> String {
    if is_secret_option(option) {
        "<redacted>".to_owned()
    } else {
        // `{:?}` escapes newlines and quotes, which keeps the message on one line.
        format!("{raw:?}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_options() {
        for name in [
            "password",
            "admin_password",
            "memcache_secret_key",
            "connection",
            "Transport_URL",
            "admin_token",
        ] {
            assert!(is_secret_option(name), "{name}");
        }
        for name in [
            "password_hash_algorithm",
            "strict_password_check",
            "max_password_length",
            "connection_recycle_time",
            "username",
        ] {
            assert!(!is_secret_option(name), "{name}");
        }
        assert_eq!(display_value("password", "hunter2"), "<redacted>");
        assert_eq!(display_value("bind", "a\"b\nc"), "\"a\\\"b\\nc\"");
    }

    #[test]
    fn origins_display() {
        let file = Origin::File {
            name: Arc::from("/etc/keystone/keystone.conf"),
            line: 7,
        };
        assert_eq!(file.to_string(), "/etc/keystone/keystone.conf:7");
        let env = Origin::Environment {
            var: "BATON__TOKEN__EXPIRATION".to_owned(),
        };
        assert_eq!(env.to_string(), "environment BATON__TOKEN__EXPIRATION");
    }

    #[test]
    fn cloud_errors_display() {
        let key = CloudOrigin::Key {
            path: PathBuf::from("/etc/openstack/clouds.yaml"),
            key: "clouds.prod.auth.auth_url".to_owned(),
        };
        assert_eq!(
            ConfigError::cloud(key, "\"ks\" is not a URL").to_string(),
            "/etc/openstack/clouds.yaml: clouds.prod.auth.auth_url: \"ks\" is not a URL"
        );
        let file = CloudOrigin::File {
            path: PathBuf::from("clouds.yaml"),
        };
        assert_eq!(
            ConfigError::cloud(file, "not valid YAML").to_string(),
            "clouds.yaml: not valid YAML"
        );
        let env = ConfigError::cloud(CloudOrigin::Env("OS_INTERFACE".into()), "bad");
        assert_eq!(env.to_string(), "environment variable OS_INTERFACE: bad");
        assert_eq!(env.origin(), None);
        assert_eq!(
            ConfigError::cloud(CloudOrigin::Arg("--os-cacert".into()), "x").to_string(),
            "option --os-cacert: x"
        );
        assert_eq!(
            ConfigError::cloud(None, "Cloud nope was not found").to_string(),
            "Cloud nope was not found"
        );
    }
}
