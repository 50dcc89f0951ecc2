//! Error type for token creation and validation.
//!
//! No variant carries the token text: callers may log these errors freely, and the token is a
//! bearer credential.

use thiserror::Error;

/// Why a token could not be created, decrypted or decoded.
#[derive(Debug, Error, Clone, PartialEq)]
pub enum TokenError {
    /// The token text is longer than [`crate::fernet::MAX_TOKEN_LENGTH`]; refused before any
    /// decoding work is done.
    #[error("token is {length} characters long, more than the {max} allowed")]
    TooLong {
        /// Length of the presented token in characters.
        length: usize,
        /// The limit that was exceeded.
        max: usize,
    },

    /// The token is not a well-formed Fernet token (bad base64, wrong version byte, wrong
    /// length). The reason is a fixed description, never derived from the token bytes.
    #[error("malformed Fernet token: {0}")]
    Malformed(&'static str),

    /// The token is well formed but no key in the set produced a matching HMAC: it was made
    /// with a key that has been rotated out, with another deployment's key, or tampered with.
    #[error("token could not be decrypted with any of the active keys")]
    Undecryptable,

    /// The plaintext decoded, but its version number is not one Keystone defines (0..=10).
    #[error("this is not a recognized Fernet payload version: {0}")]
    UnsupportedPayloadVersion(i64),

    /// The plaintext is not a valid msgpack payload of its declared version.
    #[error("invalid token payload: {0}")]
    InvalidPayload(String),

    /// The payload could not be encoded (an unknown auth method, a trust id that is not a
    /// UUID, a non-default domain id that is not a UUID...).
    #[error("cannot encode token payload: {0}")]
    InvalidInput(String),

    /// Key material was rejected (wrong length, bad base64, the all-zero key).
    #[error("invalid Fernet key: {0}")]
    InvalidKey(String),

    /// A key set must hold at least one key.
    #[error("a Fernet key set needs at least one key")]
    EmptyKeySet,
}
