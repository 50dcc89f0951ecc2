//! Password hashing and verification compatible with the hashes Keystone writes.
//!
//! Keystone's default is bcrypt (`$2b$`, 12 rounds); verification dispatches on the hash prefix so
//! that hashes written under another `[identity] password_hash_algorithm` keep working.

use baton_config::PasswordHashAlgorithm;

/// bcrypt only looks at the first 72 bytes; Keystone truncates the same way (with a warning).
const BCRYPT_MAX_BYTES: usize = 72;

#[derive(Debug, thiserror::Error)]
pub enum PasswordError {
    #[error("unsupported password hash format {0:?}")]
    UnsupportedHash(String),
    #[error("hashing failed: {0}")]
    Hash(String),
    #[error("password hash algorithm {0:?} is not supported by Baton for new passwords")]
    UnsupportedAlgorithm(String),
}

/// Hashes a password with the configured algorithm and rounds (bcrypt 12 by default).
pub fn hash_password(
    password: &str,
    algorithm: PasswordHashAlgorithm,
    rounds: Option<u32>,
) -> Result<String, PasswordError> {
    match algorithm {
        PasswordHashAlgorithm::Bcrypt => {
            let bytes = &password.as_bytes()[..password.len().min(BCRYPT_MAX_BYTES)];
            bcrypt::hash_with_result(bytes, rounds.unwrap_or(bcrypt::DEFAULT_COST))
                .map(|h| h.format_for_version(bcrypt::Version::TwoB))
                .map_err(|e| PasswordError::Hash(e.to_string()))
        }
        other => Err(PasswordError::UnsupportedAlgorithm(format!("{other:?}"))),
    }
}

/// Checks a password against a stored hash in constant time (the KDF comparison is the crate's).
pub fn verify_password(password: &str, hash: &str) -> Result<bool, PasswordError> {
    if hash.starts_with("$2b$") || hash.starts_with("$2a$") || hash.starts_with("$2y$") {
        let bytes = &password.as_bytes()[..password.len().min(BCRYPT_MAX_BYTES)];
        return bcrypt::verify(bytes, hash).map_err(|e| PasswordError::Hash(e.to_string()));
    }
    // Only the scheme name is reported: the rest of the hash is secret material.
    let scheme = hash.split('$').nth(1).unwrap_or("unknown");
    Err(PasswordError::UnsupportedHash(scheme.to_string()))
}

/// A hash of a random password with the given cost, verified against when the user does not
/// exist so that an unknown name costs as much time as a wrong password.
pub fn dummy_hash(rounds: Option<u32>) -> String {
    bcrypt::hash(
        uuid::Uuid::new_v4().to_string(),
        rounds.unwrap_or(bcrypt::DEFAULT_COST),
    )
    .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_wrong_password() {
        let h = hash_password("s3cret", PasswordHashAlgorithm::Bcrypt, Some(4)).unwrap();
        assert!(h.starts_with("$2b$04$"), "{h}");
        assert!(verify_password("s3cret", &h).unwrap());
        assert!(!verify_password("s3cret!", &h).unwrap());
    }

    #[test]
    fn long_passwords_are_truncated_like_keystone() {
        let long = "x".repeat(100);
        let h = hash_password(&long, PasswordHashAlgorithm::Bcrypt, Some(4)).unwrap();
        assert!(verify_password(&"x".repeat(72), &h).unwrap());
    }

    #[test]
    fn unknown_hash_formats_are_reported() {
        let e = verify_password("x", "$scrypt$ln=16,r=8,p=1$abc$def").unwrap_err();
        assert!(e.to_string().contains("scrypt"), "{e}");
    }
}
