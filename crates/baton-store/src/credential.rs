//! Credentials (`credential`), in Keystone's rows: the blob is stored only encrypted
//! (`encrypted_blob`, a Fernet token under `[credential] key_repository`) with `key_hash`, the
//! SHA-1 of the key that encrypted it; attributes outside Keystone's columns live in `extra`.
//! Encryption is the caller's business: this module never sees a plaintext blob.

use crate::identity::or_conflict;
use crate::{dispatch, Result, StoreError};

/// A credential row as stored.
#[derive(Clone, PartialEq, Eq)]
pub struct CredentialRow {
    /// Its id (for `ec2` credentials, the SHA-256 of the access key).
    pub id: String,
    /// The owner.
    pub user_id: String,
    /// The project (required for `ec2`).
    pub project_id: Option<String>,
    /// `ec2`, `cert`, `totp`, ...
    pub kind: String,
    /// The Fernet-encrypted blob.
    pub encrypted_blob: String,
    /// SHA-1 (hex) of the key that encrypted the blob.
    pub key_hash: String,
    /// Keystone's `extra` JSON object (other attributes of the create request).
    pub extra: Option<String>,
}

impl std::fmt::Debug for CredentialRow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The encrypted blob stays out of logs.
        f.debug_struct("CredentialRow")
            .field("id", &self.id)
            .field("user_id", &self.user_id)
            .field("project_id", &self.project_id)
            .field("type", &self.kind)
            .field("key_hash", &self.key_hash)
            .finish_non_exhaustive()
    }
}

/// Which rows a listing returns (Keystone's exact-match filters).
#[derive(Debug, Clone, Default)]
pub struct CredentialFilter {
    /// Only this user's.
    pub user_id: Option<String>,
    /// Only this type.
    pub kind: Option<String>,
    /// Only this project's.
    pub project_id: Option<String>,
}

const COLUMNS: &str =
    "SELECT id, user_id, project_id, \"type\", encrypted_blob, key_hash, extra FROM credential";

macro_rules! row_to_credential {
    ($row:expr) => {
        CredentialRow {
            id: $row.try_get("id")?,
            user_id: $row.try_get("user_id")?,
            project_id: $row.try_get("project_id")?,
            kind: $row.try_get("type")?,
            encrypted_blob: $row.try_get("encrypted_blob")?,
            key_hash: $row.try_get("key_hash")?,
            extra: $row.try_get("extra")?,
        }
    };
}

impl crate::Store {
    /// Stores a new credential; `Conflict` when the id is taken (an `ec2` access key reused).
    pub async fn create_credential(&self, c: &CredentialRow) -> Result<()> {
        let conflict = || StoreError::Conflict(format!("credential - Duplicate ID, {}.", c.id));
        dispatch!(self, write, |pool, q| {
            let mut tx = crate::begin_write!(pool);
            let taken = sqlx::query(&q("SELECT id FROM credential WHERE id = ?"))
                .bind(&c.id)
                .fetch_optional(&mut *tx)
                .await?;
            if taken.is_some() {
                return Err(conflict());
            }
            sqlx::query(&q(
                "INSERT INTO credential (id, user_id, project_id, \"type\", extra, key_hash, encrypted_blob) \
                 VALUES (?, ?, ?, ?, ?, ?, ?)",
            ))
            .bind(&c.id)
            .bind(&c.user_id)
            .bind(&c.project_id)
            .bind(&c.kind)
            .bind(c.extra.as_deref().unwrap_or("{}"))
            .bind(&c.key_hash)
            .bind(&c.encrypted_blob)
            .execute(&mut *tx)
            .await
            .map_err(|e| or_conflict(e, conflict))?;
            tx.commit().await?;
            Ok(())
        })
    }

    /// One credential by id.
    pub async fn get_credential(&self, id: &str) -> Result<Option<CredentialRow>> {
        dispatch!(self, read, |pool, q| {
            let row = sqlx::query(&q(&format!("{COLUMNS} WHERE id = ?")))
                .bind(id)
                .fetch_optional(pool)
                .await?;
            Ok(match row {
                Some(r) => Some(row_to_credential!(r)),
                None => None,
            })
        })
    }

    /// The credentials `filter` selects, by id.
    pub async fn list_credentials(&self, filter: &CredentialFilter) -> Result<Vec<CredentialRow>> {
        let mut clauses = Vec::new();
        let mut binds: Vec<&str> = Vec::new();
        for (col, v) in [
            ("user_id", &filter.user_id),
            ("\"type\"", &filter.kind),
            ("project_id", &filter.project_id),
        ] {
            if let Some(v) = v {
                clauses.push(format!("{col} = ?"));
                binds.push(v);
            }
        }
        let mut sql = COLUMNS.to_string();
        if !clauses.is_empty() {
            sql.push_str(" WHERE ");
            sql.push_str(&clauses.join(" AND "));
        }
        sql.push_str(" ORDER BY id");
        dispatch!(self, read, |pool, q| {
            let text = q(&sql);
            let mut query = sqlx::query(&text);
            for b in &binds {
                query = query.bind(*b);
            }
            let rows = query.fetch_all(pool).await?;
            let mut out = Vec::with_capacity(rows.len());
            for r in rows {
                out.push(row_to_credential!(r));
            }
            Ok(out)
        })
    }

    /// How many credentials a user owns (for `[credential] user_limit`).
    pub async fn count_credentials(&self, user_id: &str) -> Result<usize> {
        let filter = CredentialFilter {
            user_id: Some(user_id.to_string()),
            ..Default::default()
        };
        Ok(self.list_credentials(&filter).await?.len())
    }

    /// Replaces a credential's blob and key hash; false when there is no such credential.
    /// `expected_hash`, when given, must still be the row's key hash (a concurrent re-encryption
    /// wins instead of being overwritten by an older plaintext).
    pub async fn update_credential_blob(
        &self,
        id: &str,
        encrypted_blob: &str,
        key_hash: &str,
        expected_hash: Option<&str>,
    ) -> Result<bool> {
        dispatch!(self, write, |pool, q| {
            let done = match expected_hash {
                Some(old) => sqlx::query(&q(
                    "UPDATE credential SET encrypted_blob = ?, key_hash = ? WHERE id = ? AND key_hash = ?",
                ))
                .bind(encrypted_blob)
                .bind(key_hash)
                .bind(id)
                .bind(old)
                .execute(pool)
                .await?
                .rows_affected(),
                None => sqlx::query(&q(
                    "UPDATE credential SET encrypted_blob = ?, key_hash = ? WHERE id = ?",
                ))
                .bind(encrypted_blob)
                .bind(key_hash)
                .bind(id)
                .execute(pool)
                .await?
                .rows_affected(),
            };
            Ok(done > 0)
        })
    }

    /// Deletes a credential; false when there was none.
    pub async fn delete_credential(&self, id: &str) -> Result<bool> {
        dispatch!(self, write, |pool, q| {
            let done = sqlx::query(&q("DELETE FROM credential WHERE id = ?"))
                .bind(id)
                .execute(pool)
                .await?
                .rows_affected();
            Ok(done > 0)
        })
    }

    /// Deletes every credential of a user (Keystone does on the user's deletion).
    pub async fn delete_credentials_of_user(&self, user_id: &str) -> Result<u64> {
        dispatch!(self, write, |pool, q| {
            Ok(sqlx::query(&q("DELETE FROM credential WHERE user_id = ?"))
                .bind(user_id)
                .execute(pool)
                .await?
                .rows_affected())
        })
    }

    /// Deletes every credential of a project (Keystone does on the project's deletion).
    pub async fn delete_credentials_of_project(&self, project_id: &str) -> Result<u64> {
        dispatch!(self, write, |pool, q| {
            Ok(
                sqlx::query(&q("DELETE FROM credential WHERE project_id = ?"))
                    .bind(project_id)
                    .execute(pool)
                    .await?
                    .rows_affected(),
            )
        })
    }
}
