//! Typed secrets: token ids and passwords never print in clear.

use std::fmt;
use std::sync::Arc;

pub use baton_types::token_fingerprint;

/// A token id (what goes in `X-Auth-Token`, `X-Subject-Token` or `X-Service-Token`).
///
/// `Debug` prints only a SHA-256 fingerprint; there is no `Display`. Read the value with
/// [`AuthToken::expose`] where it is put on the wire.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct AuthToken(Arc<str>);

impl AuthToken {
    /// Wraps a token id.
    pub fn new(token: impl Into<String>) -> Self {
        AuthToken(Arc::from(token.into()))
    }

    /// The token itself, for a header. Never log it.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// See [`token_fingerprint`].
    pub fn fingerprint(&self) -> String {
        token_fingerprint(&self.0)
    }
}

impl fmt::Debug for AuthToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "AuthToken(sha256:{})", self.fingerprint())
    }
}

impl From<&str> for AuthToken {
    fn from(s: &str) -> Self {
        AuthToken::new(s)
    }
}

impl From<String> for AuthToken {
    fn from(s: String) -> Self {
        AuthToken::new(s)
    }
}

/// A password or application-credential secret. `Debug` prints `<redacted>` (no fingerprint: a
/// hash of a password would allow offline guessing).
#[derive(Clone, PartialEq, Eq)]
pub struct SecretString(Arc<str>);

impl SecretString {
    /// Wraps a password or secret.
    pub fn new(secret: impl Into<String>) -> Self {
        SecretString(Arc::from(secret.into()))
    }

    /// The secret itself, for a request body. Never log it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for SecretString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

impl From<&str> for SecretString {
    fn from(s: &str) -> Self {
        SecretString::new(s)
    }
}

impl From<String> for SecretString {
    fn from(s: String) -> Self {
        SecretString::new(s)
    }
}
