//! The Fernet envelope as Keystone uses it.
//!
//! Binary layout of a token (before base64):
//!
//! | bytes            | content                                             |
//! |------------------|-----------------------------------------------------|
//! | `0`              | version byte `0x80`                                 |
//! | `1..9`           | creation time, unsigned 64-bit big-endian seconds   |
//! | `9..25`          | AES-CBC initialisation vector                       |
//! | `25..len-32`     | AES-128-CBC ciphertext of the payload, PKCS#7-padded |
//! | `len-32..len`    | HMAC-SHA256 over everything before it               |
//!
//! The text form is urlsafe base64 with the trailing `=` removed, as Keystone emits it. On
//! input missing padding is tolerated, and so is padding that is present.
//!
//! Keystone decrypts without a TTL, so this module applies no expiry or clock-skew check: the
//! payload's own `expires_at` is the only lifetime, and checking it is the caller's job.

use std::fmt;
use std::time::{SystemTime, UNIX_EPOCH};

use aes::Aes128;
use base64::alphabet;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig, URL_SAFE};
use base64::engine::DecodePaddingMode;
use base64::Engine as _;
use cbc::cipher::block_padding::Pkcs7;
use cbc::cipher::{BlockDecryptMut, BlockEncryptMut, KeyIvInit};
use hmac::{Hmac, Mac};
use rand::rngs::OsRng;
use rand::RngCore;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use zeroize::{Zeroize, Zeroizing};

use crate::error::TokenError;

/// Longest token text accepted by [`KeySet::decrypt`]. Longer input is refused before it is
/// base64-decoded. Real Keystone tokens are 180 to 300 characters.
pub const MAX_TOKEN_LENGTH: usize = 8192;

/// Length of a key file's content: 32 bytes in urlsafe base64, with one `=`.
pub const KEY_BASE64_LENGTH: usize = 44;

const VERSION: u8 = 0x80;
const HEADER_LEN: usize = 1 + 8 + 16;
const TAG_LEN: usize = 32;
const BLOCK_LEN: usize = 16;
/// Smallest valid token: header, one cipher block (PKCS#7 always pads), HMAC.
const MIN_TOKEN_BYTES: usize = HEADER_LEN + BLOCK_LEN + TAG_LEN;

type HmacSha256 = Hmac<Sha256>;
type CbcEncryptor = cbc::Encryptor<Aes128>;
type CbcDecryptor = cbc::Decryptor<Aes128>;

/// Decoder for the token body once trailing `=` has been cut off. Trailing bits must be zero,
/// which every Fernet implementation produces.
const TOKEN_B64: GeneralPurpose = GeneralPurpose::new(
    &alphabet::URL_SAFE,
    GeneralPurposeConfig::new()
        .with_encode_padding(false)
        .with_decode_padding_mode(DecodePaddingMode::RequireNone),
);

/// One Fernet key: 16 bytes of HMAC signing key followed by 16 bytes of AES-128 key.
///
/// The bytes are wiped when the value is dropped, and neither `Debug` nor any error message
/// shows them; [`FernetKey::fingerprint`] identifies a key in logs instead.
#[derive(Clone)]
pub struct FernetKey {
    bytes: [u8; 32],
}

impl FernetKey {
    /// Parses the content of a key file: 44 characters of urlsafe base64 (with its one `=`)
    /// encoding 32 bytes. Surrounding whitespace is not accepted here; trim it first.
    pub fn from_base64(text: &str) -> Result<Self, TokenError> {
        if text.len() != KEY_BASE64_LENGTH {
            return Err(TokenError::InvalidKey(format!(
                "expected {KEY_BASE64_LENGTH} characters of urlsafe base64, found {}",
                text.len()
            )));
        }
        let mut buf = Zeroizing::new([0u8; 36]);
        let n = URL_SAFE
            .decode_slice(text, &mut buf[..])
            .map_err(|_| TokenError::InvalidKey("key is not valid urlsafe base64".to_string()))?;
        if n != 32 {
            return Err(TokenError::InvalidKey(format!(
                "key decodes to {n} bytes, expected 32"
            )));
        }
        let mut bytes = [0u8; 32];
        bytes.copy_from_slice(&buf[..32]);
        Self::from_bytes(bytes)
    }

    /// Wraps 32 raw key bytes. The all-zero key is refused: it is the well-known "null key"
    /// Keystone uses as a credential-encryption placeholder and must never sign tokens.
    pub fn from_bytes(bytes: [u8; 32]) -> Result<Self, TokenError> {
        let key = FernetKey { bytes };
        if key.bytes.iter().all(|b| *b == 0) {
            return Err(TokenError::InvalidKey(
                "the all-zero (null) key is not allowed".to_string(),
            ));
        }
        Ok(key)
    }

    /// Keystone's credential "null key" (32 zero bytes): Keystone appends it to the credential
    /// keys it decrypts with, and encrypts with it when `[credential] key_repository` holds no
    /// keys. Only credential decryption may use it (to read rows Keystone wrote that way); it
    /// must never sign tokens, which is why [`FernetKey::from_bytes`] refuses it.
    pub fn credential_null_key() -> Self {
        FernetKey { bytes: [0u8; 32] }
    }

    /// Whether this is the null key of [`FernetKey::credential_null_key`].
    pub fn is_null(&self) -> bool {
        self.bytes.iter().all(|b| *b == 0)
    }

    /// A fresh key from the operating system's random source.
    pub fn generate() -> Self {
        let mut bytes = [0u8; 32];
        loop {
            OsRng.fill_bytes(&mut bytes);
            // An all-zero draw is astronomically unlikely, but from_bytes would refuse it.
            if bytes.iter().any(|b| *b != 0) {
                return FernetKey { bytes };
            }
        }
    }

    /// The key file form: 44 characters of urlsafe base64, with padding, no newline.
    /// The returned string holds key material; drop it as soon as it has been written.
    pub fn to_base64(&self) -> String {
        URL_SAFE.encode(self.bytes)
    }

    /// First 8 hex digits of SHA-256 over the 32 key bytes. Safe to log; lets operators check
    /// that nodes share the same keys without revealing them.
    pub fn fingerprint(&self) -> String {
        let digest = Sha256::digest(self.bytes);
        hex_lower(&digest[..4])
    }

    /// The 32 raw bytes, for sealing a key set (never for logs).
    pub(crate) fn as_bytes(&self) -> &[u8; 32] {
        &self.bytes
    }

    fn signing_key(&self) -> &[u8] {
        &self.bytes[..16]
    }

    fn encryption_key(&self) -> &[u8] {
        &self.bytes[16..]
    }

    fn mac(&self) -> HmacSha256 {
        // HMAC accepts keys of any length, so this cannot fail.
        <HmacSha256 as Mac>::new_from_slice(self.signing_key())
            .expect("HMAC-SHA256 accepts a 16-byte key")
    }
}

impl Drop for FernetKey {
    fn drop(&mut self) {
        self.bytes.zeroize();
    }
}

/// Compares in constant time, so that equality checks never become a timing oracle.
impl PartialEq for FernetKey {
    fn eq(&self, other: &Self) -> bool {
        self.bytes[..].ct_eq(&other.bytes[..]).into()
    }
}

impl Eq for FernetKey {}

impl fmt::Debug for FernetKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FernetKey")
            .field("fingerprint", &self.fingerprint())
            .finish_non_exhaustive()
    }
}

/// What a key is used for, following Keystone's repository conventions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyRole {
    /// Encrypts new tokens (the highest index in a repository); also decrypts.
    Primary,
    /// Decrypts only: a former primary kept so that live tokens stay valid.
    Secondary,
    /// Decrypts only: key `0`, the next primary, already shared with every node.
    Staged,
}

/// A description of one key that is safe to log or show in a health check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyInfo {
    /// The key file's index when the set was loaded from a repository.
    pub index: Option<u64>,
    /// See [`FernetKey::fingerprint`].
    pub fingerprint: String,
    /// Role of the key in the set.
    pub role: KeyRole,
}

/// The result of a successful decryption.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decrypted {
    /// The plaintext: a msgpack token payload in Keystone's case.
    pub payload: Vec<u8>,
    /// Fernet creation time in Unix seconds, which Keystone reports as the token's
    /// `issued_at`.
    pub timestamp: u64,
}

/// An ordered, non-empty list of keys: the first encrypts, all of them decrypt (Keystone's
/// `MultiFernet`).
#[derive(Clone, Debug)]
pub struct KeySet {
    keys: Vec<FernetKey>,
    indices: Vec<Option<u64>>,
}

impl KeySet {
    /// A set from keys in priority order; the first one is the primary.
    pub fn new(keys: Vec<FernetKey>) -> Result<Self, TokenError> {
        if keys.is_empty() {
            return Err(TokenError::EmptyKeySet);
        }
        let indices = vec![None; keys.len()];
        Ok(KeySet { keys, indices })
    }

    /// A set from repository keys already sorted primary first, with their file indices.
    pub(crate) fn from_indexed(keys: Vec<(u64, FernetKey)>) -> Result<Self, TokenError> {
        if keys.is_empty() {
            return Err(TokenError::EmptyKeySet);
        }
        let (indices, keys) = keys.into_iter().map(|(i, k)| (Some(i), k)).unzip();
        Ok(KeySet { keys, indices })
    }

    /// The key that encrypts new tokens.
    pub fn primary(&self) -> &FernetKey {
        &self.keys[0]
    }

    /// All keys, primary first.
    pub fn keys(&self) -> &[FernetKey] {
        &self.keys
    }

    /// Each key with its repository index (`None` for a set not read from a repository),
    /// primary first.
    pub fn indexed(&self) -> Vec<(Option<u64>, &FernetKey)> {
        self.indices.iter().copied().zip(self.keys.iter()).collect()
    }

    /// Number of keys in the set (never zero).
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Always false: a key set cannot be empty. Present for API symmetry with `len`.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// Index, fingerprint and role of each key, primary first.
    pub fn key_info(&self) -> Vec<KeyInfo> {
        self.keys
            .iter()
            .zip(&self.indices)
            .enumerate()
            .map(|(pos, (key, index))| KeyInfo {
                index: *index,
                fingerprint: key.fingerprint(),
                role: if pos == 0 {
                    KeyRole::Primary
                } else if *index == Some(0) {
                    KeyRole::Staged
                } else {
                    KeyRole::Secondary
                },
            })
            .collect()
    }

    /// Encrypts with the primary key, the current time and a random IV.
    pub fn encrypt(&self, plaintext: &[u8]) -> String {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        self.encrypt_stamped(plaintext, now)
    }

    /// Encrypts with the primary key, a random IV and the given creation time (Unix seconds):
    /// for a server whose clock is not the system's (tests move it).
    pub fn encrypt_stamped(&self, plaintext: &[u8], timestamp: u64) -> String {
        let mut iv = [0u8; 16];
        OsRng.fill_bytes(&mut iv);
        self.encrypt_at(plaintext, timestamp, iv)
    }

    /// Encrypts with the primary key and a caller-chosen creation time and IV. Only for test
    /// vectors and benchmarks: reusing an IV with the same key weakens the encryption.
    pub fn encrypt_at(&self, plaintext: &[u8], timestamp: u64, iv: [u8; 16]) -> String {
        let key = self.primary();
        let ciphertext = CbcEncryptor::new(key.encryption_key().into(), (&iv).into())
            .encrypt_padded_vec_mut::<Pkcs7>(plaintext);

        let mut raw = Vec::with_capacity(HEADER_LEN + ciphertext.len() + TAG_LEN);
        raw.push(VERSION);
        raw.extend_from_slice(&timestamp.to_be_bytes());
        raw.extend_from_slice(&iv);
        raw.extend_from_slice(&ciphertext);
        let mut mac = key.mac();
        mac.update(&raw);
        raw.extend_from_slice(&mac.finalize().into_bytes());

        TOKEN_B64.encode(raw)
    }

    /// Checks the HMAC against each key in turn and decrypts with the first that matches.
    ///
    /// Size, alphabet, version byte and block alignment are all checked before any
    /// cryptographic work, so junk input is cheap to refuse. No TTL is applied.
    pub fn decrypt(&self, token: &str) -> Result<Decrypted, TokenError> {
        let raw = decode_token_text(token)?;
        let (signed, tag) = raw.split_at(raw.len() - TAG_LEN);

        let key = self
            .keys
            .iter()
            .find(|key| {
                let mut mac = key.mac();
                mac.update(signed);
                // verify_slice compares in constant time.
                mac.verify_slice(tag).is_ok()
            })
            .ok_or(TokenError::Undecryptable)?;

        let mut timestamp = [0u8; 8];
        timestamp.copy_from_slice(&signed[1..9]);
        let iv: [u8; 16] = signed[9..HEADER_LEN]
            .try_into()
            .expect("header slice is 16 bytes");
        let payload = CbcDecryptor::new(key.encryption_key().into(), (&iv).into())
            .decrypt_padded_vec_mut::<Pkcs7>(&signed[HEADER_LEN..])
            .map_err(|_| TokenError::Malformed("ciphertext padding is invalid"))?;

        Ok(Decrypted {
            payload,
            timestamp: u64::from_be_bytes(timestamp),
        })
    }
}

/// The one spelling of a token's text that every accepted spelling maps to: the decoder takes
/// the body with or without its `=` padding (and nothing else varies, since trailing bits must
/// be zero), so caches keyed on token text must key on this.
pub fn canonical_token_text(token: &str) -> &str {
    token.trim_end_matches('=')
}

/// Turns token text into the raw Fernet bytes, refusing anything that cannot be a Fernet
/// token before any cryptography runs.
fn decode_token_text(token: &str) -> Result<Vec<u8>, TokenError> {
    if token.len() > MAX_TOKEN_LENGTH {
        return Err(TokenError::TooLong {
            length: token.len(),
            max: MAX_TOKEN_LENGTH,
        });
    }
    // Keystone strips the padding and puts it back before decoding; decoding the unpadded
    // body directly is equivalent and accepts both forms.
    let body = canonical_token_text(token);
    if token.len() - body.len() > 2 {
        return Err(TokenError::Malformed("too much base64 padding"));
    }
    if body.len() % 4 == 1 {
        return Err(TokenError::Malformed("impossible base64 length"));
    }
    let decoded_len = body.len() / 4 * 3 + (body.len() % 4).saturating_sub(1);
    if decoded_len < MIN_TOKEN_BYTES {
        return Err(TokenError::Malformed("too short"));
    }
    if (decoded_len - HEADER_LEN - TAG_LEN) % BLOCK_LEN != 0 {
        return Err(TokenError::Malformed(
            "ciphertext is not a whole number of blocks",
        ));
    }
    let raw = TOKEN_B64
        .decode(body)
        .map_err(|_| TokenError::Malformed("not urlsafe base64"))?;
    debug_assert_eq!(raw.len(), decoded_len);
    if raw[0] != VERSION {
        return Err(TokenError::Malformed("unknown Fernet version byte"));
    }
    Ok(raw)
}

pub(crate) fn hex_lower(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(DIGITS[usize::from(b >> 4)] as char);
        out.push(DIGITS[usize::from(b & 0x0f)] as char);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const VECTOR_KEY: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";

    fn set() -> KeySet {
        KeySet::new(vec![FernetKey::from_base64(VECTOR_KEY).unwrap()]).unwrap()
    }

    #[test]
    fn key_round_trips_through_base64() {
        let key = FernetKey::from_base64(VECTOR_KEY).unwrap();
        assert_eq!(key.to_base64(), VECTOR_KEY);
        let fresh = FernetKey::generate();
        assert_eq!(FernetKey::from_base64(&fresh.to_base64()).unwrap(), fresh);
    }

    #[test]
    fn key_rejects_bad_input() {
        for bad in [
            "",
            "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8",
            "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\n",
            "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh*=",
        ] {
            assert!(matches!(
                FernetKey::from_base64(bad),
                Err(TokenError::InvalidKey(_))
            ));
        }
        let null = URL_SAFE.encode([0u8; 32]);
        let err = FernetKey::from_base64(&null).unwrap_err();
        assert!(err.to_string().contains("all-zero"), "{err}");
    }

    #[test]
    fn debug_hides_key_material() {
        let key = FernetKey::from_base64(VECTOR_KEY).unwrap();
        let shown = format!("{key:?} {:?}", set());
        assert!(!shown.contains(VECTOR_KEY));
        assert!(!shown.contains("AAECAwQF"));
        assert!(shown.contains(&key.fingerprint()));
        assert_eq!(key.fingerprint().len(), 8);
    }

    #[test]
    fn round_trip_keeps_timestamp() {
        let keys = set();
        let token = keys.encrypt_at(b"hello", 1_893_495_600, [7; 16]);
        assert!(!token.ends_with('='));
        let out = keys.decrypt(&token).unwrap();
        assert_eq!(out.payload, b"hello");
        assert_eq!(out.timestamp, 1_893_495_600);
    }

    #[test]
    fn empty_plaintext_is_one_block() {
        let keys = set();
        let token = keys.encrypt(b"");
        assert_eq!(keys.decrypt(&token).unwrap().payload, b"");
    }

    #[test]
    fn empty_set_is_refused() {
        assert_eq!(KeySet::new(vec![]).unwrap_err(), TokenError::EmptyKeySet);
    }

    #[test]
    fn secondary_keys_decrypt_and_primary_encrypts() {
        let old = FernetKey::generate();
        let new = FernetKey::generate();
        let before = KeySet::new(vec![old.clone()]).unwrap();
        let after = KeySet::new(vec![new.clone(), old.clone()]).unwrap();
        let token = before.encrypt(b"x");
        assert_eq!(after.decrypt(&token).unwrap().payload, b"x");
        let token = after.encrypt(b"y");
        assert_eq!(
            KeySet::new(vec![new])
                .unwrap()
                .decrypt(&token)
                .unwrap()
                .payload,
            b"y"
        );
        assert_eq!(before.decrypt(&token), Err(TokenError::Undecryptable));
    }

    #[test]
    fn key_info_roles() {
        let ks = KeySet::from_indexed(vec![
            (3, FernetKey::generate()),
            (2, FernetKey::generate()),
            (0, FernetKey::generate()),
        ])
        .unwrap();
        let roles: Vec<_> = ks.key_info().iter().map(|i| (i.index, i.role)).collect();
        assert_eq!(
            roles,
            vec![
                (Some(3), KeyRole::Primary),
                (Some(2), KeyRole::Secondary),
                (Some(0), KeyRole::Staged)
            ]
        );
    }

    #[test]
    fn decode_rejects_structural_problems() {
        let keys = set();
        let token = keys.encrypt_at(b"payload", 1, [0; 16]);
        assert!(matches!(
            keys.decrypt(&"A".repeat(MAX_TOKEN_LENGTH + 1)),
            Err(TokenError::TooLong { .. })
        ));
        assert!(matches!(keys.decrypt(""), Err(TokenError::Malformed(_))));
        assert!(matches!(
            keys.decrypt(&token[..token.len() - 4]),
            Err(TokenError::Malformed(_))
        ));
        assert!(matches!(
            keys.decrypt(&format!("{token}===")),
            Err(TokenError::Malformed(_))
        ));
        let mut junk = token.clone().into_bytes();
        junk[40] = b'!';
        assert!(matches!(
            keys.decrypt(std::str::from_utf8(&junk).unwrap()),
            Err(TokenError::Malformed(_))
        ));
        // Version byte 0x81 instead of 0x80.
        let mut raw = TOKEN_B64.decode(&token).unwrap();
        raw[0] = 0x81;
        assert_eq!(
            keys.decrypt(&TOKEN_B64.encode(&raw)),
            Err(TokenError::Malformed("unknown Fernet version byte"))
        );
        // A flipped bit anywhere in the signed part fails the HMAC.
        let mut raw = TOKEN_B64.decode(&token).unwrap();
        raw[30] ^= 1;
        assert_eq!(
            keys.decrypt(&TOKEN_B64.encode(&raw)),
            Err(TokenError::Undecryptable)
        );
    }

    #[test]
    fn errors_never_echo_the_token() {
        let keys = set();
        let token = keys.encrypt_at(b"payload", 1, [0; 16]);
        let tampered = format!("{}A", &token[..token.len() - 1]);
        for candidate in [tampered, "x".repeat(10_000), format!("{token}!")] {
            let err = keys.decrypt(&candidate).unwrap_err();
            let text = format!("{err} {err:?}");
            assert!(!text.contains(&candidate[..20]), "{text}");
        }
    }
}
