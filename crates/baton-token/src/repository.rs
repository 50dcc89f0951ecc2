//! The on-disk Fernet key repository, with `keystone-manage fernet_setup` and
//! `fernet_rotate` semantics, and [`KeyRing`], the shared handle the request path reads keys
//! from.
//!
//! Layout (shared with Python Keystone, so both can use the same directory):
//!
//! * one file per key, named by its integer index, holding the 44-character urlsafe base64 key
//!   with no trailing newline, mode `0600`, in a directory of mode `0700`;
//! * `0` is the staged key: it decrypts, and becomes the next primary on rotation;
//! * the highest index is the primary, the only key that encrypts;
//! * anything in between is a secondary key, kept so that tokens it signed stay valid.
//!
//! Unlike Keystone, which only warns, loading refuses a directory or key file that grants any
//! permission to "other" users: a world-readable key lets anyone mint tokens.
//!
//! Everything here does blocking file I/O; async callers should use `spawn_blocking`.

use std::collections::BTreeMap;
use std::fs::{self, DirBuilder, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};

use thiserror::Error;
use zeroize::Zeroizing;

use crate::fernet::{FernetKey, KeySet};

/// Name of the staged key, and of the temporary file a new key is written to first.
const STAGED: &str = "0";
const STAGED_TMP: &str = "0.tmp";
/// A key file is 44 bytes; anything much larger is not a key and is not read into memory.
const MAX_KEY_FILE_BYTES: u64 = 1024;

/// Why the key repository could not be used. Every variant names the path concerned.
#[derive(Debug, Error)]
pub enum RepositoryError {
    /// The directory does not exist.
    #[error("Fernet key repository {} does not exist; create it with the Fernet key setup command (keystone-manage fernet_setup)", path.display())]
    Missing {
        /// The configured repository path.
        path: PathBuf,
    },
    /// The path exists but is not a directory.
    #[error("Fernet key repository {} is not a directory", path.display())]
    NotADirectory {
        /// The configured repository path.
        path: PathBuf,
    },
    /// The directory holds no usable key.
    #[error("Fernet key repository {} contains no keys; initialize it with the Fernet key setup command (keystone-manage fernet_setup)", path.display())]
    Empty {
        /// The configured repository path.
        path: PathBuf,
    },
    /// Rotation needs the staged key `0`, which is missing.
    #[error("Fernet key repository {} has no staged key 0; initialize it with the Fernet key setup command before rotating", path.display())]
    NotInitialized {
        /// The configured repository path.
        path: PathBuf,
    },
    /// The directory or a key file is accessible to users other than its owner and group.
    #[error("{} has mode {mode:04o}, which gives other users access to Fernet keys; fix it with `chmod o-rwx {}` (Keystone creates the directory 0700 and keys 0600)", path.display(), path.display())]
    InsecurePermissions {
        /// The directory or key file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// A key file does not hold a valid key.
    #[error("invalid Fernet key file {}: {reason}", path.display())]
    MalformedKey {
        /// The key file.
        path: PathBuf,
        /// What is wrong with it (never the key itself).
        reason: String,
    },
    /// A reload found keys that no longer include the primary key in use and no newer one:
    /// a copy or sync half done, or a key file removed by hand. The loaded keys stay in use
    /// (tokens issued with them must keep validating) until the directory holds that key or a
    /// newer primary again; a wholesale replacement of the keys takes a restart.
    #[error("Fernet key repository {} no longer holds the primary key in use (index {index}) nor a newer one; keeping the loaded keys", path.display())]
    PrimaryVanished {
        /// The configured repository path.
        path: PathBuf,
        /// The index of the primary key in use.
        index: u64,
    },
    /// `max_active_keys` below 1 cannot be honoured.
    #[error("max_active_keys must be at least 1, not {0}")]
    InvalidMaxActiveKeys(usize),
    /// A file system operation failed.
    #[error("cannot {action} {}: {source}", path.display())]
    Io {
        /// What was being done.
        action: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
}

/// Writes `key` to a file that must not exist yet, readable by its owner only, and syncs it.
fn write_new_key_file(path: &Path, key: &FernetKey) -> io::Result<()> {
    let text = Zeroizing::new(key.to_base64());
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    // The umask can only remove bits; make the mode exact regardless.
    file.set_permissions(fs::Permissions::from_mode(0o600))?;
    file.write_all(text.as_bytes())?;
    file.sync_all()
}

fn io_err<'a>(
    action: &'static str,
    path: &'a Path,
) -> impl FnOnce(io::Error) -> RepositoryError + 'a {
    move |source| RepositoryError::Io {
        action,
        path: path.to_path_buf(),
        source,
    }
}

/// Result of [`KeyRepository::setup`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SetupOutcome {
    /// The repository was created: key `0` (staged) and key `1` (primary).
    Initialized {
        /// Key indices now present, highest first.
        keys: Vec<u64>,
    },
    /// Key `0` already existed; nothing was changed.
    AlreadyInitialized,
}

/// Result of [`KeyRepository::rotate`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RotateOutcome {
    /// Index the former staged key was promoted to; it is now the primary.
    pub new_primary: u64,
    /// Indices of keys deleted because more than `max_active_keys` would have remained.
    pub removed: Vec<u64>,
    /// Key indices present after the rotation, highest first (a new staged `0` is last).
    pub keys: Vec<u64>,
}

/// A Fernet key directory.
#[derive(Debug, Clone)]
pub struct KeyRepository {
    path: PathBuf,
    max_active_keys: usize,
}

impl KeyRepository {
    /// `path` is `[fernet_tokens] key_repository`, `max_active_keys` the setting of the same
    /// name (Keystone's default is 3: one staged, one primary, one secondary).
    pub fn new(path: impl Into<PathBuf>, max_active_keys: usize) -> Self {
        KeyRepository {
            path: path.into(),
            max_active_keys,
        }
    }

    /// The repository directory.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The configured `max_active_keys`.
    pub fn max_active_keys(&self) -> usize {
        self.max_active_keys
    }

    /// `keystone-manage fernet_setup`: creates the directory (mode 0700) if needed and, unless
    /// key `0` already exists, writes key `0` and rotates once, leaving keys `0` and `1`.
    pub fn setup(&self) -> Result<SetupOutcome, RepositoryError> {
        self.check_max_active_keys()?;
        match fs::metadata(&self.path) {
            Ok(meta) if !meta.is_dir() => {
                return Err(RepositoryError::NotADirectory {
                    path: self.path.clone(),
                })
            }
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                self.create_private_dir()?;
                tracing::info!(path = %self.path.display(), "created Fernet key repository");
            }
            Err(e) => return Err(io_err("inspect", &self.path)(e)),
        }
        if self.path.join(STAGED).exists() {
            tracing::info!(path = %self.path.display(), "Fernet key repository is already initialized");
            return Ok(SetupOutcome::AlreadyInitialized);
        }
        self.check_directory()?;
        self.write_tmp_key()?;
        self.rename(STAGED_TMP, STAGED)?;
        let outcome = self.rotate()?;
        Ok(SetupOutcome::Initialized { keys: outcome.keys })
    }

    /// `keystone-manage fernet_rotate`: the staged key `0` becomes the new primary (highest
    /// index + 1), a new staged key `0` is written, and the lowest non-zero keys are deleted
    /// while more than `max_active_keys - 1` non-zero keys remain.
    ///
    /// The new key is written to `0.tmp` first and renamed into place, so a crash never leaves a
    /// half-written key `0`; other nodes see either the old or the new set of files.
    pub fn rotate(&self) -> Result<RotateOutcome, RepositoryError> {
        self.check_max_active_keys()?;
        self.check_directory()?;
        let before = self.key_files()?;
        if before.is_empty() {
            return Err(RepositoryError::Empty {
                path: self.path.clone(),
            });
        }
        if !before.contains_key(&0) {
            return Err(RepositoryError::NotInitialized {
                path: self.path.clone(),
            });
        }
        tracing::info!(
            path = %self.path.display(),
            keys = ?before.keys().rev().collect::<Vec<_>>(),
            "starting Fernet key rotation"
        );

        self.write_tmp_key()?;
        let current_primary = *before.keys().next_back().expect("checked non-empty");
        let new_primary = current_primary + 1;
        self.rename(STAGED, &new_primary.to_string())?;
        self.rename(STAGED_TMP, STAGED)?;
        tracing::info!(new_primary, "promoted staged key 0 to primary");

        // Non-zero keys, highest first; drop from the low end.
        let mut active: Vec<u64> = before.keys().copied().filter(|i| *i != 0).collect();
        active.push(new_primary);
        active.sort_unstable_by(|a, b| b.cmp(a));
        let mut removed = Vec::new();
        while active.len() > self.max_active_keys - 1 {
            let index = active.pop().expect("loop condition ensures an element");
            let path = self.path.join(index.to_string());
            fs::remove_file(&path).map_err(io_err("remove excess key", &path))?;
            tracing::info!(path = %path.display(), "purged excess Fernet key");
            removed.push(index);
        }
        self.sync_dir();

        active.push(0);
        Ok(RotateOutcome {
            new_primary,
            removed,
            keys: active,
        })
    }

    /// Makes the directory hold exactly `keys` (index -> key), as a mirror of a set kept
    /// elsewhere (the shared database) that Keystone nodes and tools can read. Each changed key
    /// is written to a temporary file in the directory, flushed, and renamed over its name, so
    /// a reader never sees a partial key file; new and changed non-zero keys go first, then the
    /// staged `0`, and stale keys are removed last, so every listing in between can decrypt
    /// what either set encrypts. Unchanged files are left alone. Creates the directory (0700)
    /// if needed. Returns whether anything changed.
    pub fn mirror(&self, keys: &BTreeMap<u64, FernetKey>) -> Result<bool, RepositoryError> {
        match fs::metadata(&self.path) {
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => self.create_private_dir()?,
            Err(e) => return Err(io_err("inspect", &self.path)(e)),
        }
        self.check_directory()?;
        let existing = self.key_files()?;
        let mut changed = false;
        let order = keys
            .iter()
            .filter(|(i, _)| **i != 0)
            .chain(keys.iter().filter(|(i, _)| **i == 0));
        for (index, key) in order {
            let same = existing
                .get(index)
                .and_then(|path| read_key(path).ok())
                .is_some_and(|k| k == *key);
            if !same {
                self.write_key_atomically(*index, key)?;
                changed = true;
            }
        }
        for (index, path) in &existing {
            if !keys.contains_key(index) {
                fs::remove_file(path).map_err(io_err("remove stale key", path))?;
                changed = true;
            }
        }
        if changed {
            self.sync_dir();
        }
        Ok(changed)
    }

    /// Creates the repository directory (and its parents), readable by its owner only.
    fn create_private_dir(&self) -> Result<(), RepositoryError> {
        DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&self.path)
            .map_err(io_err("create directory", &self.path))
    }

    fn write_key_atomically(&self, index: u64, key: &FernetKey) -> Result<(), RepositoryError> {
        let tmp = self.path.join(format!(".{index}.mirror.tmp"));
        let _ = fs::remove_file(&tmp);
        if let Err(e) = write_new_key_file(&tmp, key) {
            let _ = fs::remove_file(&tmp);
            return Err(io_err("write key", &tmp)(e));
        }
        let to = self.path.join(index.to_string());
        fs::rename(&tmp, &to).map_err(io_err("rename", &tmp))
    }

    /// Loads every key: primary (highest index) first, staged key `0` last.
    ///
    /// Only files whose name is an integer count (`0.tmp` and the like are ignored); empty key
    /// files are skipped with a warning, as Keystone does. A missing or empty repository, an
    /// unreadable or malformed key, and a directory or key file open to "other" users are
    /// errors.
    pub fn load(&self) -> Result<KeySet, RepositoryError> {
        self.check_directory()?;
        let files = self.key_files()?;
        let mut keys = Vec::with_capacity(files.len());
        for (index, path) in files.iter().rev() {
            check_mode(path, &fs::metadata(path).map_err(io_err("inspect", path))?)?;
            keys.push((*index, read_key(path)?));
        }
        if keys.is_empty() {
            return Err(RepositoryError::Empty {
                path: self.path.clone(),
            });
        }
        if keys.len() != self.max_active_keys {
            tracing::debug!(
                path = %self.path.display(),
                count = keys.len(),
                max_active_keys = self.max_active_keys,
                "number of Fernet keys differs from max_active_keys (not enough rotations yet?)"
            );
        }
        Ok(KeySet::from_indexed(keys).expect("checked non-empty"))
    }

    /// A cheap summary of the directory (names, sizes, inodes, times) that changes whenever a
    /// key is written, renamed or removed; used by [`KeyRing::reload_if_changed`].
    fn stamp(&self) -> Result<Vec<EntryStamp>, RepositoryError> {
        let dir = fs::metadata(&self.path).map_err(|e| self.missing_or(e, "inspect"))?;
        let mut stamps = vec![EntryStamp::of(String::new(), &dir)];
        for entry in fs::read_dir(&self.path).map_err(io_err("list", &self.path))? {
            let entry = entry.map_err(io_err("list", &self.path))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            // Follow symlinks, so a swapped link target (as with mounted secrets) counts.
            match fs::metadata(entry.path()) {
                Ok(meta) => stamps.push(EntryStamp::of(name, &meta)),
                // Vanished between listing and stat: a rotation is under way.
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(io_err("inspect", &entry.path())(e)),
            }
        }
        stamps.sort();
        Ok(stamps)
    }

    fn check_max_active_keys(&self) -> Result<(), RepositoryError> {
        if self.max_active_keys < 1 {
            return Err(RepositoryError::InvalidMaxActiveKeys(self.max_active_keys));
        }
        Ok(())
    }

    fn missing_or(&self, e: io::Error, action: &'static str) -> RepositoryError {
        if e.kind() == io::ErrorKind::NotFound {
            RepositoryError::Missing {
                path: self.path.clone(),
            }
        } else {
            io_err(action, &self.path)(e)
        }
    }

    /// The directory exists, is a directory, and is closed to "other".
    fn check_directory(&self) -> Result<(), RepositoryError> {
        let meta = fs::metadata(&self.path).map_err(|e| self.missing_or(e, "inspect"))?;
        if !meta.is_dir() {
            return Err(RepositoryError::NotADirectory {
                path: self.path.clone(),
            });
        }
        check_mode(&self.path, &meta)
    }

    /// Integer-named, non-empty regular files, by index.
    fn key_files(&self) -> Result<BTreeMap<u64, PathBuf>, RepositoryError> {
        let mut files = BTreeMap::new();
        for entry in fs::read_dir(&self.path).map_err(io_err("list", &self.path))? {
            let entry = entry.map_err(io_err("list", &self.path))?;
            let name = entry.file_name();
            let Some(index) = name.to_str().and_then(parse_index) else {
                continue;
            };
            let path = entry.path();
            let meta = match fs::metadata(&path) {
                Ok(meta) => meta,
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => return Err(io_err("inspect", &path)(e)),
            };
            if !meta.is_file() {
                continue;
            }
            if meta.len() == 0 {
                tracing::warn!(path = %path.display(), "ignoring empty key file in Fernet key repository");
                continue;
            }
            if let Some(previous) = files.insert(index, path.clone()) {
                return Err(RepositoryError::MalformedKey {
                    path,
                    reason: format!("same key index as {}", previous.display()),
                });
            }
        }
        Ok(files)
    }

    /// Writes a fresh key to `0.tmp` (mode 0600, no newline) and flushes it to disk.
    fn write_tmp_key(&self) -> Result<(), RepositoryError> {
        let path = self.path.join(STAGED_TMP);
        match fs::remove_file(&path) {
            Ok(()) => tracing::warn!(path = %path.display(), "removed a stale temporary key"),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(io_err("remove stale", &path)(e)),
        }
        if let Err(e) = write_new_key_file(&path, &FernetKey::generate()) {
            let _ = fs::remove_file(&path);
            return Err(io_err("write new key", &path)(e));
        }
        Ok(())
    }

    fn rename(&self, from: &str, to: &str) -> Result<(), RepositoryError> {
        let from = self.path.join(from);
        let to = self.path.join(to);
        fs::rename(&from, &to).map_err(io_err("rename", &from))?;
        self.sync_dir();
        Ok(())
    }

    /// Makes renames durable. Best effort: failure only weakens crash safety.
    fn sync_dir(&self) {
        if let Err(e) = fs::File::open(&self.path).and_then(|d| d.sync_all()) {
            tracing::debug!(path = %self.path.display(), error = %e, "could not fsync key repository");
        }
    }
}

/// Key file names are decimal integers. Names with signs, spaces or other characters (which
/// Python's `int()` would also take) are ignored like any other non-key file.
fn parse_index(name: &str) -> Option<u64> {
    if name.is_empty() || !name.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    name.parse().ok()
}

fn check_mode(path: &Path, meta: &fs::Metadata) -> Result<(), RepositoryError> {
    let mode = meta.permissions().mode() & 0o7777;
    if mode & 0o007 != 0 {
        return Err(RepositoryError::InsecurePermissions {
            path: path.to_path_buf(),
            mode,
        });
    }
    Ok(())
}

fn read_key(path: &Path) -> Result<FernetKey, RepositoryError> {
    let malformed = |reason: String| RepositoryError::MalformedKey {
        path: path.to_path_buf(),
        reason,
    };
    let file = fs::File::open(path).map_err(io_err("open", path))?;
    let mut text = Zeroizing::new(String::with_capacity(64));
    file.take(MAX_KEY_FILE_BYTES + 1)
        .read_to_string(&mut text)
        .map_err(|e| match e.kind() {
            io::ErrorKind::InvalidData => malformed("not UTF-8 text".to_string()),
            _ => io_err("read", path)(e),
        })?;
    if text.len() as u64 > MAX_KEY_FILE_BYTES {
        return Err(malformed(format!(
            "more than {MAX_KEY_FILE_BYTES} bytes; a key file holds 44 characters"
        )));
    }
    // Keystone writes no newline, but a key pasted in with `echo` has one; Python's base64
    // decoder ignores it, so tolerate surrounding whitespace too.
    FernetKey::from_base64(text.trim()).map_err(|e| malformed(e.to_string()))
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct EntryStamp {
    name: String,
    len: u64,
    ino: u64,
    mtime: (i64, i64),
    ctime: (i64, i64),
    mode: u32,
}

impl EntryStamp {
    fn of(name: String, meta: &fs::Metadata) -> Self {
        EntryStamp {
            name,
            len: meta.len(),
            ino: meta.ino(),
            mtime: (meta.mtime(), meta.mtime_nsec()),
            ctime: (meta.ctime(), meta.ctime_nsec()),
            mode: meta.mode(),
        }
    }
}

/// A shared, cheaply clonable handle on the current [`KeySet`].
///
/// The request path calls [`KeyRing::current`], which only clones an `Arc`. A background task
/// calls [`KeyRing::reload_if_changed`] every few seconds, so that a rotation done by another
/// process (`keystone-manage fernet_rotate`, a config-management sync) is picked up without a
/// restart. A reload that fails keeps serving the previous keys.
#[derive(Clone)]
pub struct KeyRing {
    inner: Arc<RingInner>,
}

struct RingInner {
    repository: Option<KeyRepository>,
    state: RwLock<RingState>,
    /// Serialises reloads so that a slow, older reload never overwrites a newer one.
    reloading: Mutex<()>,
}

struct RingState {
    keys: Arc<KeySet>,
    stamp: Option<Vec<EntryStamp>>,
}

impl KeyRing {
    /// Loads the repository now; fails as [`KeyRepository::load`] does.
    pub fn load(repository: KeyRepository) -> Result<Self, RepositoryError> {
        let stamp = repository.stamp()?;
        let keys = repository.load()?;
        Ok(KeyRing {
            inner: Arc::new(RingInner {
                repository: Some(repository),
                state: RwLock::new(RingState {
                    keys: Arc::new(keys),
                    stamp: Some(stamp),
                }),
                reloading: Mutex::new(()),
            }),
        })
    }

    /// A ring over a fixed key set with no repository behind it (tests, tools).
    pub fn from_key_set(keys: KeySet) -> Self {
        KeyRing {
            inner: Arc::new(RingInner {
                repository: None,
                state: RwLock::new(RingState {
                    keys: Arc::new(keys),
                    stamp: None,
                }),
                reloading: Mutex::new(()),
            }),
        }
    }

    /// The keys to use for this request.
    pub fn current(&self) -> Arc<KeySet> {
        let state = self.inner.state.read().unwrap_or_else(|e| e.into_inner());
        Arc::clone(&state.keys)
    }

    /// Puts `keys` in use at once (a set loaded from the shared database). A ring with a
    /// repository keeps reloading it when its directory changes; rings fed this way have none.
    pub fn install(&self, keys: KeySet) {
        let _guard = self
            .inner
            .reloading
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        let mut state = self.inner.state.write().unwrap_or_else(|e| e.into_inner());
        state.keys = Arc::new(keys);
    }

    /// The repository behind the ring, if any.
    pub fn repository(&self) -> Option<&KeyRepository> {
        self.inner.repository.as_ref()
    }

    /// Re-reads the repository if its listing, sizes, inodes or times changed since the last
    /// load. Returns whether new keys were installed. On error the previous keys stay in
    /// use, and the next call tries again: a missing directory, a truncated, empty-then-written
    /// or garbage key file, and a set that drops the primary key in use without a newer one
    /// ([`RepositoryError::PrimaryVanished`]) all keep the last good keys.
    pub fn reload_if_changed(&self) -> Result<bool, RepositoryError> {
        let Some(repository) = &self.inner.repository else {
            return Ok(false);
        };
        let _guard = self
            .inner
            .reloading
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        // Stamp before reading: a change made during the read then shows up next time.
        let stamp = repository.stamp()?;
        {
            let state = self.inner.state.read().unwrap_or_else(|e| e.into_inner());
            if state.stamp.as_ref() == Some(&stamp) {
                return Ok(false);
            }
        }
        let keys = repository.load()?;
        let info = keys.key_info();
        let mut state = self.inner.state.write().unwrap_or_else(|e| e.into_inner());
        if let Some(index) = primary_dropped(&state.keys, &keys) {
            return Err(RepositoryError::PrimaryVanished {
                path: repository.path().to_path_buf(),
                index,
            });
        }
        state.keys = Arc::new(keys);
        state.stamp = Some(stamp);
        drop(state);
        tracing::info!(
            path = %repository.path().display(),
            keys = ?info.iter().map(|k| (k.index, k.fingerprint.as_str())).collect::<Vec<_>>(),
            "reloaded Fernet keys"
        );
        Ok(true)
    }
}

/// The index of the primary key in use when `new` drops it without bringing a newer primary.
/// A rotation (Keystone's or Baton's) always keeps the old primary as a secondary key, so a
/// set without it is a directory caught mid-copy or a key removed by hand.
pub fn primary_dropped(old: &KeySet, new: &KeySet) -> Option<u64> {
    let (Some(old_index), old_primary) = old.indexed().first().copied()? else {
        return None; // a set installed from the database: no files to compare with
    };
    let newer = matches!(new.indexed().first(), Some((Some(i), _)) if *i > old_index);
    let kept = new.keys().iter().any(|k| k == old_primary);
    (!newer && !kept).then_some(old_index)
}

impl std::fmt::Debug for KeyRing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyRing")
            .field(
                "repository",
                &self.inner.repository.as_ref().map(|r| r.path()),
            )
            .field("keys", &self.current().key_info())
            .finish()
    }
}

#[cfg(test)]
mod tests;
