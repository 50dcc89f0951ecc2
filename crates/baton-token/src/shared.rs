//! Key sets shared by a fleet through its database (`key_distribution = database`): the keys
//! of one repository with their indices, Keystone's setup and rotation on them in memory, and
//! their sealed form, a Fernet token made with the key-encryption key (KEK) that every node
//! holds in `[fernet_tokens] key_encryption_key_file`.
//!
//! The sealed plaintext binds the repository name and the set's version, so a row cannot be
//! swapped with another repository's or replayed under a newer version number. Layout (all
//! integers big-endian):
//!
//! | bytes | content |
//! |---|---|
//! | 4 | `BKS1` |
//! | 1 + n | length of the repository name, then its bytes |
//! | 8 | version |
//! | 2 | number of keys |
//! | 48 each | index (8), demoted at (8, Unix seconds, 0 = still in use), key (32) |

use std::collections::BTreeMap;
use std::fs;
use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use thiserror::Error;
use zeroize::Zeroizing;

use crate::fernet::{FernetKey, KeySet, MAX_TOKEN_LENGTH};
use crate::repository::RotateOutcome;

const MAGIC: &[u8; 4] = b"BKS1";
const ENTRY_LEN: usize = 8 + 8 + 32;
/// Most keys one sealed set holds: its token must stay under [`MAX_TOKEN_LENGTH`].
pub const MAX_SHARED_KEYS: usize = 100;

/// Why a sealed key set could not be used. No variant carries key material.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum SealError {
    /// The KEK does not open it: another KEK, or the row was changed.
    #[error("the sealed key set does not open with the key-encryption key (another KEK, or tampered with)")]
    Undecryptable,
    /// It opened but is not a key set of this layout.
    #[error("the sealed key set is malformed: {0}")]
    Malformed(&'static str),
    /// It opened but belongs to another repository or version than its row says.
    #[error("the sealed key set is for {found}, not {expected}")]
    Mismatch {
        /// `repository@version` as the row says.
        expected: String,
        /// `repository@version` as sealed.
        found: String,
    },
    /// More keys than [`MAX_SHARED_KEYS`], or none.
    #[error("a shared key set holds 1 to {MAX_SHARED_KEYS} keys, not {0}")]
    Count(usize),
}

/// One key of a shared set.
#[derive(Clone, Debug)]
pub struct SharedKey {
    /// The key.
    pub key: FernetKey,
    /// When it stopped being the primary (Unix seconds): tokens it encrypted were minted
    /// before then. `None` for the primary and the staged key.
    pub demoted_at: Option<u64>,
}

/// The keys of one repository by index: `0` staged, the highest primary, as on disk.
#[derive(Clone, Debug, Default)]
pub struct SharedKeys {
    keys: BTreeMap<u64, SharedKey>,
}

impl SharedKeys {
    /// `fernet_setup`'s result: a staged key `0` and a primary `1`, both fresh.
    pub fn initial() -> SharedKeys {
        let mut keys = BTreeMap::new();
        for index in [0, 1] {
            keys.insert(
                index,
                SharedKey {
                    key: FernetKey::generate(),
                    demoted_at: None,
                },
            );
        }
        SharedKeys { keys }
    }

    /// The keys of a loaded repository (e.g. an existing `key_repository` imported into the
    /// database). When they stopped encrypting is unknown, so every secondary counts as
    /// demoted `now`: pruning then waits a full retention.
    pub fn from_key_set(set: &KeySet, now: u64) -> SharedKeys {
        let mut keys = BTreeMap::new();
        let indexed = set.indexed();
        let count = indexed.len() as u64;
        // A set without indices (not from a repository) is numbered as files would be:
        // primary highest, down to 1.
        let number = |position: usize, index: Option<u64>| index.unwrap_or(count - position as u64);
        let top = indexed
            .iter()
            .enumerate()
            .map(|(p, (i, _))| number(p, *i))
            .max()
            .unwrap_or(0);
        for (position, (index, key)) in indexed.into_iter().enumerate() {
            let index = number(position, index);
            let demoted_at = (index != 0 && index != top).then_some(now);
            keys.insert(
                index,
                SharedKey {
                    key: key.clone(),
                    demoted_at,
                },
            );
        }
        SharedKeys { keys }
    }

    /// Every key by index.
    pub fn entries(&self) -> &BTreeMap<u64, SharedKey> {
        &self.keys
    }

    /// Every key by index, without metadata (for writing a repository).
    pub fn files(&self) -> BTreeMap<u64, FernetKey> {
        self.keys.iter().map(|(i, k)| (*i, k.key.clone())).collect()
    }

    /// The staged key `0`, if the set has one.
    pub fn staged(&self) -> Option<&FernetKey> {
        self.keys.get(&0).map(|k| &k.key)
    }

    /// The primary's index (the highest).
    pub fn primary_index(&self) -> Option<u64> {
        self.keys.keys().next_back().copied()
    }

    /// The set the request path uses: primary first, staged `0` last.
    pub fn key_set(&self) -> Option<KeySet> {
        let ordered: Vec<(u64, FernetKey)> = self
            .keys
            .iter()
            .rev()
            .map(|(i, k)| (*i, k.key.clone()))
            .collect();
        KeySet::from_indexed(ordered).ok()
    }

    /// `(index, fingerprint)` of every key, by index.
    pub fn fingerprints(&self) -> Vec<(u64, String)> {
        self.keys
            .iter()
            .map(|(i, k)| (*i, k.key.fingerprint()))
            .collect()
    }

    /// The indices a rotation would prune, lowest first, with when each stopped encrypting:
    /// `fernet_rotate` keeps `max_active_keys - 1` non-zero keys after promoting the staged one.
    pub fn would_prune(&self, max_active_keys: usize) -> Vec<(u64, Option<u64>)> {
        let non_zero: Vec<(u64, Option<u64>)> = self
            .keys
            .iter()
            .filter(|(i, _)| **i != 0)
            .map(|(i, k)| (*i, k.demoted_at))
            .collect();
        // After the rotation there is one more non-zero key (the promoted staged one).
        let after = non_zero.len() + 1;
        let excess = after.saturating_sub(max_active_keys.max(1) - 1);
        non_zero.into_iter().take(excess).collect()
    }

    /// `keystone-manage fernet_rotate` on the set: the staged key becomes the primary (highest
    /// index + 1), a fresh staged key `0` is made, the former primary is stamped `now` as
    /// demoted, and the lowest non-zero keys go while more than `max_active_keys - 1` remain.
    pub fn rotate(&mut self, max_active_keys: usize, now: u64) -> Option<RotateOutcome> {
        let staged = self.keys.remove(&0)?;
        let current = self.primary_index().unwrap_or(0);
        if let Some(old) = self.keys.get_mut(&current) {
            old.demoted_at = Some(now);
        }
        let new_primary = current + 1;
        self.keys.insert(
            new_primary,
            SharedKey {
                key: staged.key,
                demoted_at: None,
            },
        );
        let mut removed = Vec::new();
        while self.keys.len() > max_active_keys.max(1) - 1 {
            let Some((&lowest, _)) = self.keys.iter().next() else {
                break;
            };
            self.keys.remove(&lowest);
            removed.push(lowest);
        }
        self.keys.insert(
            0,
            SharedKey {
                key: FernetKey::generate(),
                demoted_at: None,
            },
        );
        Some(RotateOutcome {
            new_primary,
            removed,
            keys: self.keys.keys().rev().copied().collect(),
        })
    }

    /// The sealed form of version `version` of `repository`'s set.
    pub fn seal(
        &self,
        kek: &FernetKey,
        repository: &str,
        version: u64,
    ) -> Result<String, SealError> {
        if self.keys.is_empty() || self.keys.len() > MAX_SHARED_KEYS {
            return Err(SealError::Count(self.keys.len()));
        }
        let name = repository.as_bytes();
        let name_len = u8::try_from(name.len())
            .map_err(|_| SealError::Malformed("repository name too long"))?;
        let mut plain = Zeroizing::new(Vec::with_capacity(
            4 + 1 + name.len() + 10 + self.keys.len() * ENTRY_LEN,
        ));
        plain.extend_from_slice(MAGIC);
        plain.push(name_len);
        plain.extend_from_slice(name);
        plain.extend_from_slice(&version.to_be_bytes());
        plain.extend_from_slice(&(self.keys.len() as u16).to_be_bytes());
        for (index, entry) in &self.keys {
            plain.extend_from_slice(&index.to_be_bytes());
            plain.extend_from_slice(&entry.demoted_at.unwrap_or(0).to_be_bytes());
            plain.extend_from_slice(entry.key.as_bytes());
        }
        let sealer = KeySet::new(vec![kek.clone()]).map_err(|_| SealError::Count(0))?;
        Ok(sealer.encrypt(&plain))
    }

    /// Opens a sealed set, checking it is version `version` of `repository`.
    pub fn open(
        kek: &FernetKey,
        sealed: &str,
        repository: &str,
        version: u64,
    ) -> Result<SharedKeys, SealError> {
        if sealed.len() > MAX_TOKEN_LENGTH {
            return Err(SealError::Malformed("longer than any sealed key set"));
        }
        let opener = KeySet::new(vec![kek.clone()]).map_err(|_| SealError::Count(0))?;
        let plain = Zeroizing::new(
            opener
                .decrypt(sealed)
                .map_err(|_| SealError::Undecryptable)?
                .payload,
        );
        let mut r = Reader(&plain[..]);
        if r.take(4)? != MAGIC {
            return Err(SealError::Malformed("unknown layout"));
        }
        let name_len = usize::from(r.take(1)?[0]);
        let name = String::from_utf8_lossy(r.take(name_len)?).into_owned();
        let sealed_version = r.u64()?;
        if name != repository || sealed_version != version {
            return Err(SealError::Mismatch {
                expected: format!("{repository}@{version}"),
                found: format!("{name}@{sealed_version}"),
            });
        }
        let count = usize::from(u16::from_be_bytes(
            r.take(2)?
                .try_into()
                .map_err(|_| SealError::Malformed("count"))?,
        ));
        if count == 0 || count > MAX_SHARED_KEYS {
            return Err(SealError::Count(count));
        }
        let mut keys = BTreeMap::new();
        for _ in 0..count {
            let index = r.u64()?;
            let demoted = r.u64()?;
            let mut bytes = [0u8; 32];
            bytes.copy_from_slice(r.take(32)?);
            let key = FernetKey::from_bytes(bytes).map_err(|_| SealError::Malformed("null key"))?;
            let entry = SharedKey {
                key,
                demoted_at: (demoted != 0).then_some(demoted),
            };
            if keys.insert(index, entry).is_some() {
                return Err(SealError::Malformed("duplicate key index"));
            }
        }
        if !r.0.is_empty() {
            return Err(SealError::Malformed("trailing bytes"));
        }
        Ok(SharedKeys { keys })
    }
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], SealError> {
        if self.0.len() < n {
            return Err(SealError::Malformed("truncated"));
        }
        let (head, tail) = self.0.split_at(n);
        self.0 = tail;
        Ok(head)
    }

    fn u64(&mut self) -> Result<u64, SealError> {
        let bytes = self.take(8)?;
        let mut out = [0u8; 8];
        out.copy_from_slice(bytes);
        Ok(u64::from_be_bytes(out))
    }
}

/// Why the key-encryption key file cannot be used. Every variant names the file.
#[derive(Debug, Error)]
pub enum KekError {
    /// The file does not exist or cannot be read.
    #[error("{}: cannot read: {reason}", path.display())]
    Unreadable {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// Group or other users have access to it.
    #[error("{} has mode {mode:04o}, which gives group or other users access to the key that protects every shared key; fix it with `chmod 600 {}`", path.display(), path.display())]
    InsecurePermissions {
        /// The file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// It does not hold a Fernet key (32 random bytes, urlsafe base64).
    #[error("{} does not hold a Fernet key (32 random bytes in urlsafe base64, as `baton manage fernet_setup` writes key files): {reason}", path.display())]
    Malformed {
        /// The file.
        path: PathBuf,
        /// What is wrong (never the content).
        reason: String,
    },
}

/// Reads the key-encryption key: a file of mode 0600 or stricter (unlike key files, whose
/// group bits Keystone tolerates, since this one key opens every shared key) holding one
/// Fernet key, surrounding whitespace allowed.
pub fn read_key_encryption_key(path: &Path) -> Result<FernetKey, KekError> {
    let unreadable = |e: std::io::Error| KekError::Unreadable {
        path: path.to_path_buf(),
        reason: e.to_string(),
    };
    let meta = fs::metadata(path).map_err(unreadable)?;
    let mode = meta.permissions().mode() & 0o7777;
    if mode & 0o077 != 0 {
        return Err(KekError::InsecurePermissions {
            path: path.to_path_buf(),
            mode,
        });
    }
    let mut text = Zeroizing::new(String::new());
    fs::File::open(path)
        .map_err(unreadable)?
        .take(1025)
        .read_to_string(&mut text)
        .map_err(|_| KekError::Malformed {
            path: path.to_path_buf(),
            reason: "not text".into(),
        })?;
    FernetKey::from_base64(text.trim()).map_err(|e| KekError::Malformed {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })
}

#[cfg(test)]
mod tests;
