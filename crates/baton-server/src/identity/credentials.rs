//! Credentials (`/v3/credentials`, and the EC2 ones under `OS-EC2`): Keystone's encryption of
//! their blobs and its rules for writing them.
//!
//! A blob is stored only as a Fernet token made with the primary key of `[credential]
//! key_repository`, next to `key_hash`, the SHA-1 of that key's file text, exactly as Keystone's
//! `fernet` credential provider does, so each implementation decrypts the other's rows. An `ec2`
//! blob is encrypted as the JSON encoding of the blob string (Keystone's `json.dumps`), any other
//! blob as its text. Decryption tries every key of the repository and then Keystone's "null
//! key" (32 zero bytes), which Keystone encrypts with when it has no keys.
//!
//! Unlike Keystone, Baton never *encrypts* with the null key: a create or update without
//! credential keys is a 500 telling the operator to run `baton manage credential_setup`.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use baton_config::{CredentialOptions, IdentityConfig, KeyDistribution};
use baton_store::{CredentialFilter, CredentialRow, Store};
use baton_token::{FernetKey, KeyRepository, KeySet, RepositoryError};
use serde_json::{Map, Value};
use sha1::Digest as _;

use super::Identity;
use crate::error::{ApiError, ApiResult};

/// Keystone's credential type of EC2 (and S3) access keys.
pub const EC2: &str = "ec2";

/// A credential with its blob decrypted.
#[derive(Clone)]
pub struct Credential {
    /// Its id.
    pub id: String,
    /// The owner.
    pub user_id: String,
    /// The project, if any (always set for `ec2`).
    pub project_id: Option<String>,
    /// `ec2`, `cert`, `totp`, ...
    pub kind: String,
    /// The plaintext blob (for `ec2`, a JSON object with `access` and `secret`).
    pub blob: String,
    /// Other attributes of the create request, kept as Keystone keeps them.
    pub extra: Map<String, Value>,
}

impl std::fmt::Debug for Credential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The blob is the secret: never in logs.
        f.debug_struct("Credential")
            .field("id", &self.id)
            .field("user_id", &self.user_id)
            .field("project_id", &self.project_id)
            .field("type", &self.kind)
            .finish_non_exhaustive()
    }
}

/// A create request, already shape-checked.
#[derive(Clone)]
pub struct NewCredential {
    /// A chosen id (ignored for `ec2`, whose id is the access key's hash).
    pub id: Option<String>,
    /// The owner.
    pub user_id: String,
    /// The project.
    pub project_id: Option<String>,
    /// The type.
    pub kind: String,
    /// The plaintext blob.
    pub blob: String,
    /// Other attributes (kept in `extra`).
    pub extra: Map<String, Value>,
}

/// Keystone's 404 for a credential.
pub fn not_found(id: &str) -> ApiError {
    ApiError::not_found("credential", id)
}

/// Keystone's `hash_access_key`: the id of an EC2 credential, SHA-256 of its access key.
pub fn ec2_credential_id(access: &str) -> String {
    hex(&sha2::Sha256::digest(access.as_bytes()))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Keystone's `primary_key_hash`: SHA-1 (hex) of the key file's text.
pub fn key_hash(key: &FernetKey) -> String {
    hex(&sha1::Sha1::digest(key.to_base64().as_bytes()))
}

// ----- keys --------------------------------------------------------------------------------

/// The credential keys as Keystone loads them on every use: the repository's keys, primary
/// first, then the null key.
pub struct CredentialKeys {
    keys: KeySet,
    primary_hash: String,
    repository: PathBuf,
}

/// The last good credential keys read from each repository in this process.
static LAST_GOOD: Mutex<Vec<(PathBuf, KeySet)>> = Mutex::new(Vec::new());

/// The repository's keys, or, while it is caught mid-change (vanished, emptied, a key file
/// half written, the primary key gone without a newer one), the last good keys this process
/// read from it, as for the token keys: rows encrypted with them must stay readable. Only a
/// process that never read the repository sees the error (Keystone's null key when missing).
fn keep_last_good(
    path: &Path,
    loaded: Result<KeySet, RepositoryError>,
) -> Result<KeySet, RepositoryError> {
    let mut last = LAST_GOOD.lock().unwrap_or_else(|e| e.into_inner());
    let slot = last.iter().position(|(p, _)| p == path);
    let kept = |why: &dyn std::fmt::Display, set: &KeySet| {
        tracing::warn!(path = %path.display(), error = %why, "credential key repository mid-change; keeping the last keys read from it");
        Ok(set.clone())
    };
    match (loaded, slot) {
        (Ok(set), Some(i)) => match baton_token::primary_dropped(&last[i].1, &set) {
            Some(index) => kept(&format!("primary key {index} vanished"), &last[i].1),
            None => {
                last[i].1 = set.clone();
                Ok(set)
            }
        },
        (Ok(set), None) => {
            last.push((path.to_path_buf(), set.clone()));
            Ok(set)
        }
        (Err(e), Some(i)) => kept(&e, &last[i].1),
        (Err(e), None) => Err(e),
    }
}

impl CredentialKeys {
    /// Reads `[credential] key_repository` (off the async workers). A missing or empty
    /// repository leaves only the null key, as in Keystone; a malformed key or one open to
    /// other users is an error; either way, once this process has read keys from it, those
    /// stay in use instead (`keep_last_good`).
    pub async fn load(opts: &CredentialOptions) -> ApiResult<CredentialKeys> {
        let repo = KeyRepository::new(&opts.key_repository, opts.max_active_keys as usize);
        let path = opts.key_repository.clone();
        let loaded = tokio::task::spawn_blocking(move || repo.load())
            .await
            .map_err(|e| ApiError::Internal(e.to_string()))?;
        let mut keys = match keep_last_good(&path, loaded) {
            Ok(set) => set.keys().to_vec(),
            Err(RepositoryError::Missing { .. } | RepositoryError::Empty { .. }) => Vec::new(),
            Err(e) => return Err(ApiError::Internal(format!("credential keys: {e}"))),
        };
        keys.push(FernetKey::credential_null_key());
        let primary_hash = key_hash(&keys[0]);
        let keys = KeySet::new(keys).map_err(|e| ApiError::Internal(e.to_string()))?;
        Ok(CredentialKeys {
            keys,
            primary_hash,
            repository: path,
        })
    }

    /// The keys of a set shared through the database (`[credential] key_distribution =
    /// database`), then the null key; with no set, only the null key (as an empty repository).
    pub fn from_shared(shared: Option<&baton_token::SharedKeys>) -> ApiResult<CredentialKeys> {
        let mut keys: Vec<FernetKey> = shared
            .and_then(baton_token::SharedKeys::key_set)
            .map(|set| set.keys().to_vec())
            .unwrap_or_default();
        keys.push(FernetKey::credential_null_key());
        let primary_hash = key_hash(&keys[0]);
        let keys = KeySet::new(keys).map_err(|e| ApiError::Internal(e.to_string()))?;
        Ok(CredentialKeys {
            keys,
            primary_hash,
            repository: PathBuf::from("the shared credential key set in the database"),
        })
    }

    /// The keys `config` says to use: `[credential] key_repository`, or the set in `store`
    /// with `key_distribution = database` (for `baton manage`, which runs no refresher).
    pub async fn for_config(config: &IdentityConfig, store: &Store) -> ApiResult<CredentialKeys> {
        if config.credential.key_distribution != KeyDistribution::Database {
            return CredentialKeys::load(&config.credential).await;
        }
        let kek = crate::fleet::read_kek(config).map_err(|e| ApiError::Internal(e.to_string()))?;
        let shared = crate::fleet::fetch(store, &kek, crate::fleet::CREDENTIAL)
            .await
            .map_err(|e| ApiError::Internal(e.to_string()))?;
        CredentialKeys::from_shared(shared.as_ref().map(|(_, k)| k))
    }

    /// The key hash rows encrypted now carry.
    pub fn primary_hash(&self) -> &str {
        &self.primary_hash
    }

    /// Encrypts a plaintext with the primary key; refused with the null key (see the module
    /// documentation).
    pub fn encrypt(&self, plaintext: &str) -> ApiResult<(String, String)> {
        if self.keys.primary().is_null() {
            return Err(ApiError::Internal(format!(
                "[credential] key_repository {} holds no keys: run `baton manage credential_setup`",
                self.repository.display()
            )));
        }
        let mut token = self.keys.encrypt(plaintext.as_bytes());
        // A Fernet token proper, with its base64 padding: Keystone strips the padding from
        // tokens, not from credentials, and Python's decoder requires it.
        while token.len() % 4 != 0 {
            token.push('=');
        }
        Ok((token, self.primary_hash.clone()))
    }

    /// Decrypts a stored blob with any key.
    pub fn decrypt(&self, id: &str, encrypted: &str) -> ApiResult<String> {
        let plain = self.keys.decrypt(encrypted).map_err(|_| {
            ApiError::Internal(format!(
                "credential {id} could not be decrypted with the keys of {}",
                self.repository.display()
            ))
        })?;
        String::from_utf8(plain.payload)
            .map_err(|_| ApiError::Internal(format!("credential {id} is not UTF-8")))
    }

    /// The stored form of a blob: `(encrypted_blob, key_hash)`.
    pub fn seal(&self, kind: &str, blob: &str) -> ApiResult<(String, String)> {
        if kind == EC2 {
            self.encrypt(&py_json(&Value::String(blob.to_string())))
        } else {
            self.encrypt(blob)
        }
    }

    /// A row with its blob decrypted.
    pub fn open(&self, row: CredentialRow) -> ApiResult<Credential> {
        let plain = self.decrypt(&row.id, &row.encrypted_blob)?;
        let blob = if row.kind == EC2 {
            // Keystone `json.loads` an ec2 blob: normally a JSON string (the blob as sent);
            // rows from before its bug #1259584 hold the object itself, shown re-serialized.
            match serde_json::from_str::<Value>(&plain) {
                Ok(Value::String(s)) => s,
                Ok(other) => py_json(&other),
                Err(_) => plain,
            }
        } else {
            plain
        };
        let extra = row
            .extra
            .as_deref()
            .and_then(|e| serde_json::from_str::<Map<String, Value>>(e).ok())
            .unwrap_or_default();
        Ok(Credential {
            id: row.id,
            user_id: row.user_id,
            project_id: row.project_id,
            kind: row.kind,
            blob,
            extra,
        })
    }
}

/// Python's `json.dumps` (`ensure_ascii`, `", "` and `": "` separators), which Keystone uses
/// for what it encrypts and shows.
pub fn py_json(v: &Value) -> String {
    match v {
        Value::String(s) => {
            let mut out = String::with_capacity(s.len() + 2);
            let quoted = Value::String(s.clone()).to_string();
            for c in quoted.chars() {
                if c.is_ascii() {
                    out.push(c);
                } else {
                    let mut buf = [0u16; 2];
                    for unit in c.encode_utf16(&mut buf) {
                        out.push_str(&format!("\\u{unit:04x}"));
                    }
                }
            }
            out
        }
        Value::Array(items) => {
            let inner: Vec<String> = items.iter().map(py_json).collect();
            format!("[{}]", inner.join(", "))
        }
        Value::Object(map) => {
            let inner: Vec<String> = map
                .iter()
                .map(|(k, v)| format!("{}: {}", py_json(&Value::String(k.clone())), py_json(v)))
                .collect();
            format!("{{{}}}", inner.join(", "))
        }
        other => other.to_string(),
    }
}

// ----- rotation and migration (keystone-manage) ----------------------------------------------

/// `keystone-manage credential_rotate`'s precondition: every row is encrypted with the primary
/// key; otherwise the message Keystone exits with.
pub async fn check_rotatable(store: &Store, opts: &CredentialOptions) -> ApiResult<()> {
    check_rotatable_with(store, &CredentialKeys::load(opts).await?).await
}

/// [`check_rotatable`] with the keys given (shared through the database, say).
pub async fn check_rotatable_with(store: &Store, keys: &CredentialKeys) -> ApiResult<()> {
    let rows = store.list_credentials(&CredentialFilter::default()).await?;
    if rows.iter().any(|r| r.key_hash != keys.primary_hash) {
        return Err(ApiError::BadRequest(
            "Unable to rotate credential keys because not all credentials are encrypted with the primary key. Please make sure all credentials have been encrypted with the primary key using `keystone-manage credential_migrate`.".into(),
        ));
    }
    Ok(())
}

/// `keystone-manage credential_migrate`: every row not encrypted with the primary key is
/// decrypted and encrypted again with it. Returns how many rows were re-encrypted.
pub async fn migrate(store: &Store, opts: &CredentialOptions) -> ApiResult<usize> {
    migrate_with(store, &CredentialKeys::load(opts).await?).await
}

/// [`migrate`] with the keys given (shared through the database, say).
pub async fn migrate_with(store: &Store, keys: &CredentialKeys) -> ApiResult<usize> {
    let mut migrated = 0;
    for row in store.list_credentials(&CredentialFilter::default()).await? {
        if row.key_hash == keys.primary_hash {
            continue;
        }
        // The plaintext as stored, re-sealed as is (no ec2 re-encoding).
        let plain = keys.decrypt(&row.id, &row.encrypted_blob)?;
        let (sealed, hash) = keys.encrypt(&plain)?;
        if store
            .update_credential_blob(&row.id, &sealed, &hash, Some(&row.key_hash))
            .await?
        {
            migrated += 1;
        }
    }
    Ok(migrated)
}

// ----- writes ----------------------------------------------------------------------------------

impl Identity {
    async fn credential_keys(&self) -> ApiResult<CredentialKeys> {
        if self.config.credential.key_distribution == KeyDistribution::Database {
            // Kept current by the refresher (1 s); a lagging node still holds the former
            // primary, which the rotation kept as a secondary.
            return CredentialKeys::from_shared(self.fleet.credential_keys().as_ref());
        }
        CredentialKeys::load(&self.config.credential).await
    }

    /// One credential, decrypted.
    pub async fn get_credential(&self, id: &str) -> ApiResult<Option<Credential>> {
        let Some(row) = self.store.get_credential(id).await? else {
            return Ok(None);
        };
        Ok(Some(self.credential_keys().await?.open(row)?))
    }

    /// The credentials `filter` selects, decrypted, by id.
    pub async fn list_credentials(&self, filter: &CredentialFilter) -> ApiResult<Vec<Credential>> {
        let rows = self.store.list_credentials(filter).await?;
        if rows.is_empty() {
            return Ok(Vec::new());
        }
        let keys = self.credential_keys().await?;
        rows.into_iter().map(|r| keys.open(r)).collect()
    }

    /// Creates a credential: encrypts its blob, enforces `[credential] user_limit` (403 as
    /// Keystone), and stores it (409 when the id, e.g. an EC2 access key, is taken).
    pub async fn create_credential(&self, new: NewCredential) -> ApiResult<Credential> {
        let keys = self.credential_keys().await?;
        let (encrypted_blob, key_hash) = keys.seal(&new.kind, &new.blob)?;
        let limit = self.config.credential.user_limit;
        if limit >= 0 && self.store.count_credentials(&new.user_id).await? as i64 >= limit {
            return Err(ApiError::ForbiddenNotSecurity(format!(
                "Unable to create additional credentials, maximum of {limit} already exceeded for user."
            )));
        }
        let id = new.id.unwrap_or_else(baton_store::new_id);
        let row = CredentialRow {
            id: id.clone(),
            user_id: new.user_id.clone(),
            project_id: new.project_id.clone(),
            kind: new.kind.clone(),
            encrypted_blob,
            key_hash,
            extra: Some(Value::Object(new.extra.clone()).to_string()),
        };
        self.store.create_credential(&row).await?;
        tracing::info!(credential_id = %id, user_id = %new.user_id, "credential created");
        self.audit().resource("created", "credential", &id).await;
        Ok(Credential {
            id,
            user_id: new.user_id,
            project_id: new.project_id,
            kind: new.kind,
            blob: new.blob,
            extra: new.extra,
        })
    }

    /// Replaces a credential's blob (the only attribute Keystone lets a PATCH change). Keystone
    /// encrypts an updated blob as its text whatever the type (its update request carries no
    /// `type`), so an `ec2` blob updated here reads back re-serialized, as there.
    pub async fn update_credential_blob(
        &self,
        current: Credential,
        blob: String,
    ) -> ApiResult<Credential> {
        let keys = self.credential_keys().await?;
        let (sealed, hash) = keys.encrypt(&blob)?;
        if !self
            .store
            .update_credential_blob(&current.id, &sealed, &hash, None)
            .await?
        {
            return Err(not_found(&current.id));
        }
        Ok(Credential { blob, ..current })
    }

    /// Deletes a credential (404 when there is none).
    pub async fn delete_credential(&self, id: &str) -> ApiResult<()> {
        if !self.store.delete_credential(id).await? {
            return Err(not_found(id));
        }
        tracing::info!(credential_id = %id, "credential deleted");
        self.audit().resource("deleted", "credential", id).await;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn python_json_encoding() {
        assert_eq!(
            py_json(&Value::String("a\"é😀".into())),
            r#""a\"\u00e9\ud83d\ude00""#
        );
        let v: Value =
            serde_json::from_str(r#"{"access": "a", "secret": "s", "trust_id": null}"#).unwrap();
        assert_eq!(
            py_json(&v),
            r#"{"access": "a", "secret": "s", "trust_id": null}"#
        );
    }

    #[test]
    fn keystone_hashes() {
        // sha256("abc"), Keystone's hash_access_key.
        assert_eq!(
            ec2_credential_id("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        // SHA-1 of the null key's text, the key_hash of rows Keystone wrote without keys.
        assert_eq!(
            key_hash(&FernetKey::credential_null_key()),
            hex(&sha1::Sha1::digest(
                b"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="
            ))
        );
    }
}
