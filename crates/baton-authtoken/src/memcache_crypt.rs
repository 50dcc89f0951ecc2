//! keystonemiddleware's protection of memcached token-cache entries
//! (`memcache_security_strategy`), byte for byte, so that its processes and Baton's read each
//! other's entries:
//!
//! * keys: `HMAC-SHA384(memcache_secret_key, token || strategy)` split in three 16-byte parts:
//!   the cache key, the MAC key and the AES-128 key. The memcached key is
//!   `tokens/b'<base64 of the cache key>'` (the Python 3 rendering of bytes that
//!   keystonemiddleware formats into its key template), so memcached never sees the token;
//! * MAC: the stored value is `base64(HMAC-SHA384(MAC key, base64(data)))` followed by
//!   `base64(data)`, compared in constant time on read;
//! * ENCRYPT: `data` is first `IV || AES-128-CBC(PKCS#7(json))` with a random 16-byte IV.
//!
//! Without a strategy (`None`) the key is `tokens/<sha256 hex of the token>` and the value the
//! JSON as it is, exactly as keystonemiddleware's plain `TokenCache`.

use aes::Aes128;
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use cbc::cipher::block_padding::Pkcs7;
use cbc::cipher::{BlockDecryptMut, BlockEncryptMut, KeyIvInit};
use hmac::{Hmac, Mac};
use rand::rngs::OsRng;
use rand::RngCore;
use sha2::{Digest, Sha256, Sha384};
use subtle::ConstantTimeEq;

use crate::cache::hex;

type HmacSha384 = Hmac<Sha384>;

/// keystonemiddleware's key template (`_CACHE_KEY_TEMPLATE`).
const KEY_PREFIX: &str = "tokens/";
/// Length of the base64 MAC at the start of a protected value (48 bytes of SHA-384).
const MAC_B64_LEN: usize = 64;
const IV_LEN: usize = 16;

/// `memcache_security_strategy`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Strategy {
    /// Entries stored as plain JSON (`None`, the default).
    None,
    /// Entries authenticated with HMAC-SHA384 (`MAC`).
    Mac,
    /// Entries encrypted with AES-128-CBC, then authenticated (`ENCRYPT`).
    Encrypt,
}

impl Strategy {
    /// Reads the option as keystonemiddleware does: `None`, `MAC` or `ENCRYPT`, any case.
    pub fn parse(text: &str) -> Option<Strategy> {
        match text.to_ascii_uppercase().as_str() {
            "NONE" => Some(Strategy::None),
            "MAC" => Some(Strategy::Mac),
            "ENCRYPT" => Some(Strategy::Encrypt),
            _ => None,
        }
    }

    /// The name keystonemiddleware mixes into the key derivation.
    pub fn as_str(self) -> &'static str {
        match self {
            Strategy::None => "None",
            Strategy::Mac => "MAC",
            Strategy::Encrypt => "ENCRYPT",
        }
    }
}

/// The keys of one token's entry.
pub(crate) struct EntryKeys {
    /// The memcached key.
    pub key: String,
    protection: Option<Protection>,
}

struct Protection {
    mac: [u8; 16],
    /// `Some` under `ENCRYPT`.
    encryption: Option<[u8; 16]>,
}

/// Why a stored value was not used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Unusable {
    /// Too short, or not base64 where base64 is expected.
    Malformed,
    /// The MAC does not match: tampered, or written with another secret.
    BadMac,
    /// Authentic but cannot be decrypted (wrong padding or length).
    Undecryptable,
}

impl Unusable {
    pub fn as_str(self) -> &'static str {
        match self {
            Unusable::Malformed => "malformed",
            Unusable::BadMac => "MAC mismatch",
            Unusable::Undecryptable => "cannot be decrypted",
        }
    }
}

/// The entry keys of `token` under `strategy` (keystonemiddleware's `derive_keys` and
/// `get_cache_key`).
pub(crate) fn entry_keys(token: &str, secret: &[u8], strategy: Strategy) -> EntryKeys {
    if strategy == Strategy::None {
        return EntryKeys {
            key: format!("{KEY_PREFIX}{}", hex(&Sha256::digest(token.as_bytes()))),
            protection: None,
        };
    }
    let mut kdf = mac_with(secret);
    kdf.update(token.as_bytes());
    kdf.update(strategy.as_str().as_bytes());
    let digest = kdf.finalize().into_bytes();
    let part = |i: usize| -> [u8; 16] {
        let mut out = [0u8; 16];
        out.copy_from_slice(&digest[i * 16..(i + 1) * 16]);
        out
    };
    EntryKeys {
        key: format!("{KEY_PREFIX}b'{}'", B64.encode(part(0))),
        protection: Some(Protection {
            mac: part(1),
            encryption: (strategy == Strategy::Encrypt).then(|| part(2)),
        }),
    }
}

fn mac_with(key: &[u8]) -> HmacSha384 {
    <HmacSha384 as Mac>::new_from_slice(key).expect("HMAC takes any key length")
}

fn sign(mac_key: &[u8; 16], data: &[u8]) -> String {
    let mut m = mac_with(mac_key);
    m.update(data);
    B64.encode(m.finalize().into_bytes())
}

impl EntryKeys {
    /// The value to store for `json` (keystonemiddleware's `protect_data`).
    pub fn protect(&self, json: &[u8]) -> Vec<u8> {
        let Some(p) = &self.protection else {
            return json.to_vec();
        };
        let data = match &p.encryption {
            Some(key) => {
                let mut iv = [0u8; IV_LEN];
                OsRng.fill_bytes(&mut iv);
                let mut out = iv.to_vec();
                out.extend(
                    cbc::Encryptor::<Aes128>::new(key.into(), &iv.into())
                        .encrypt_padded_vec_mut::<Pkcs7>(json),
                );
                out
            }
            None => json.to_vec(),
        };
        let encoded = B64.encode(data);
        let mut value = sign(&p.mac, encoded.as_bytes()).into_bytes();
        value.extend_from_slice(encoded.as_bytes());
        value
    }

    /// The JSON in a stored value, once its MAC checks out and it decrypts
    /// (keystonemiddleware's `unprotect_data`).
    pub fn unprotect(&self, stored: &[u8]) -> Result<Vec<u8>, Unusable> {
        let Some(p) = &self.protection else {
            return Ok(stored.to_vec());
        };
        if stored.len() < MAC_B64_LEN {
            return Err(Unusable::Malformed);
        }
        let (given, encoded) = stored.split_at(MAC_B64_LEN);
        let expected = sign(&p.mac, encoded);
        if !bool::from(expected.as_bytes().ct_eq(given)) {
            return Err(Unusable::BadMac);
        }
        let data = B64.decode(encoded).map_err(|_| Unusable::Malformed)?;
        let Some(key) = &p.encryption else {
            return Ok(data);
        };
        if data.len() < 2 * IV_LEN || data.len() % IV_LEN != 0 {
            return Err(Unusable::Undecryptable);
        }
        let (iv, ciphertext) = data.split_at(IV_LEN);
        let mut iv_block = [0u8; IV_LEN];
        iv_block.copy_from_slice(iv);
        cbc::Decryptor::<Aes128>::new(key.into(), &iv_block.into())
            .decrypt_padded_vec_mut::<Pkcs7>(ciphertext)
            .map_err(|_| Unusable::Undecryptable)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Vectors from keystonemiddleware 13.0.1's own `_memcache_crypt` (derive_keys,
    // get_cache_key, protect_data with the IV 00 01 .. 0f).
    const TOKEN: &str = "gAAAAABexampletoken-0123456789";
    const SECRET: &[u8] = b"s3cr3t-memcache-key";
    const JSON: &[u8] = br#"{"token": {"a": 1}}"#;

    #[test]
    fn keys_are_keystonemiddlewares() {
        let mac = entry_keys(TOKEN, SECRET, Strategy::Mac);
        assert_eq!(mac.key, "tokens/b'vyniqawgdGkHu2jdgGZayQ=='");
        let p = mac.protection.as_ref().unwrap();
        assert_eq!(hex(&p.mac), "02eed5546c2898fef47d1c1d206fd1fc");
        assert!(p.encryption.is_none());
        let enc = entry_keys(TOKEN, SECRET, Strategy::Encrypt);
        assert_eq!(enc.key, "tokens/b'88Q4vE1t1SS9p6w6BS7HBw=='");
        let p = enc.protection.as_ref().unwrap();
        assert_eq!(hex(&p.mac), "b51e261f46d227481f803ccde70cf3e2");
        assert_eq!(
            hex(&p.encryption.unwrap()),
            "07fd695e5c5dfd63fef82fac8507b1e3"
        );
        let plain = entry_keys(TOKEN, SECRET, Strategy::None);
        assert_eq!(
            plain.key,
            format!("tokens/{}", hex(&Sha256::digest(TOKEN.as_bytes())))
        );
    }

    #[test]
    fn mac_values_match_and_round_trip() {
        let k = entry_keys(TOKEN, SECRET, Strategy::Mac);
        let v = k.protect(JSON);
        assert_eq!(
            v,
            b"hTM3vqYwy0I0uY7KvwpvBKutQvKKZM6sw4OsyE61m4rdx6xKByXnWV2o+gObY4Y+eyJ0b2tlbiI6IHsiYSI6IDF9fQ=="
        );
        assert_eq!(k.unprotect(&v).unwrap(), JSON);
        let mut tampered = v.clone();
        let last = tampered.len() - 3;
        tampered[last] ^= 1;
        assert_eq!(k.unprotect(&tampered), Err(Unusable::BadMac));
        assert_eq!(k.unprotect(b"short"), Err(Unusable::Malformed));
        let other = entry_keys(TOKEN, b"another secret", Strategy::Mac);
        assert_eq!(other.unprotect(&v), Err(Unusable::BadMac));
    }

    #[test]
    fn encrypted_values_read_keystonemiddlewares_and_round_trip() {
        let k = entry_keys(TOKEN, SECRET, Strategy::Encrypt);
        let theirs = b"c56EoDwyxiMfglwcE2oCY8wb1+L7mQx9tcwTGpsUGzwvxPgIOog0T9oPgi2EnebKAAECAwQFBgcICQoLDA0OD6JBB0Lx8az1aqGTNz1tXFENIsH+3BMiK/tYvRPZ6y3X";
        assert_eq!(k.unprotect(theirs).unwrap(), JSON);
        let ours = k.protect(JSON);
        assert_ne!(ours, theirs.to_vec(), "a fresh IV each time");
        assert_eq!(k.unprotect(&ours).unwrap(), JSON);
        assert!(!String::from_utf8_lossy(&ours).contains("token"));
        // Under MAC alone the same value is authentic only with the MAC strategy's keys.
        let mac = entry_keys(TOKEN, SECRET, Strategy::Mac);
        assert_eq!(mac.unprotect(theirs), Err(Unusable::BadMac));
    }

    #[test]
    fn strategy_names_are_case_insensitive() {
        assert_eq!(Strategy::parse("mac"), Some(Strategy::Mac));
        assert_eq!(Strategy::parse("Encrypt"), Some(Strategy::Encrypt));
        assert_eq!(Strategy::parse("none"), Some(Strategy::None));
        assert_eq!(Strategy::parse("AES"), None);
    }
}
