//! Keystone-compatible Fernet tokens: the Fernet envelope, the msgpack payload versions and the key repository.
//!
//! This crate owns everything between a token string and its decoded fields, and nothing
//! above that (no expiry policy, revocation, roles or catalog):
//!
//! * [`fernet`]: the Fernet envelope (AES-128-CBC + HMAC-SHA256) and multi-key sets;
//! * [`payload`]: Keystone's msgpack payload versions 0 to 10, byte-compatible with Python
//!   Keystone so that both can validate each other's tokens;
//! * [`repository`]: the key directory (`fernet_setup` / `fernet_rotate` semantics) and
//!   [`KeyRing`], the shared, hot-reloadable handle on the current keys;
//! * [`shared`]: a key set shared through the database (`key_distribution = database`),
//!   sealed with the key-encryption key;
//! * [`TokenFormatter`]: payload + keys → token string and back.

pub mod error;
pub mod fernet;
#[doc(hidden)]
pub mod fuzzing;
pub mod payload;
pub mod repository;
pub mod shared;

pub use error::TokenError;
pub use fernet::{
    canonical_token_text, Decrypted, FernetKey, KeyInfo, KeyRole, KeySet, MAX_TOKEN_LENGTH,
};
pub use payload::{random_audit_id, ContinuationDelegation, PayloadCodec, Scope, TokenPayload};
pub use repository::{
    primary_dropped, KeyRepository, KeyRing, RepositoryError, RotateOutcome, SetupOutcome,
};
pub use shared::{read_key_encryption_key, KekError, SealError, SharedKey, SharedKeys};

/// Turns payloads into token strings and back, with the ring's current keys.
///
/// Creating a token encrypts with the primary key; validating tries every key. Validation
/// here means "authentic and well formed": the caller still has to compare
/// [`TokenPayload::expires_at`] with the clock and consult revocations.
#[derive(Debug, Clone)]
pub struct TokenFormatter {
    ring: KeyRing,
    codec: PayloadCodec,
}

impl TokenFormatter {
    /// A formatter over a key ring and the deployment's payload settings.
    pub fn new(ring: KeyRing, codec: PayloadCodec) -> Self {
        TokenFormatter { ring, codec }
    }

    /// The key ring (for reloading and health checks).
    pub fn ring(&self) -> &KeyRing {
        &self.ring
    }

    /// The payload codec.
    pub fn codec(&self) -> &PayloadCodec {
        &self.codec
    }

    /// Encodes and encrypts a payload; the token's `issued_at` is the current time.
    pub fn create_token(&self, payload: &TokenPayload) -> Result<String, TokenError> {
        let plaintext = self.codec.encode(payload)?;
        Ok(self.ring.current().encrypt(&plaintext))
    }

    /// As [`TokenFormatter::create_token`], issued at `issued_at` (Unix seconds).
    pub fn create_token_at(
        &self,
        payload: &TokenPayload,
        issued_at: u64,
    ) -> Result<String, TokenError> {
        let plaintext = self.codec.encode(payload)?;
        Ok(self.ring.current().encrypt_stamped(&plaintext, issued_at))
    }

    /// Decrypts and decodes a token. Returns the payload and `issued_at` (Unix seconds).
    /// No expiry check is made.
    pub fn validate_token(&self, token: &str) -> Result<(TokenPayload, u64), TokenError> {
        let decrypted = self.ring.current().decrypt(token)?;
        let payload = self.codec.decode(&decrypted.payload)?;
        Ok((payload, decrypted.timestamp))
    }
}
