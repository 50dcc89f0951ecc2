//! Users, their passwords and group memberships.

use chrono::NaiveDateTime;

use crate::{dispatch, PasswordRecord, Result, Store, TimestampRepr as _, User};

const USER_COLUMNS: &str =
    "SELECT u.id, COALESCE(lu.name, nu.name) AS name, u.domain_id, u.enabled, \
     u.default_project_id, u.extra, u.created_at FROM \"user\" u \
     LEFT JOIN local_user lu ON lu.user_id = u.id \
     LEFT JOIN nonlocal_user nu ON nu.user_id = u.id";

macro_rules! user_from_row {
    ($row:expr) => {
        User {
            id: $row.try_get("id")?,
            name: $row
                .try_get::<Option<String>, _>("name")?
                .unwrap_or_default(),
            domain_id: $row.try_get("domain_id")?,
            enabled: $row.try_get::<Option<bool>, _>("enabled")?.unwrap_or(false),
            default_project_id: $row.try_get("default_project_id")?,
            extra: $row.try_get("extra")?,
            created_at: $row.try_get("created_at")?,
        }
    };
}

/// Inserts a `password` row for the local user of `user_id`, filling both the legacy datetime
/// columns and the microsecond integers Keystone reads.
macro_rules! insert_password {
    ($tx:ident, $q:ident, $pool:ident, $user_id:expr, $hash:expr, $now:expr) => {{
        let local = sqlx::query(&$q("SELECT id FROM local_user WHERE user_id = ?"))
            .bind($user_id)
            .fetch_optional(&mut *$tx)
            .await?
            .ok_or_else(|| crate::StoreError::NotFound {
                kind: "local user",
                id: $user_id.to_string(),
            })?;
        let local_id: i64 = local.try_get::<i64, _>(0).or_else(|_| local.try_get::<i32, _>(0).map(i64::from))?;
        // Keep created_at_int strictly increasing so "the newest password" is well defined
        // even for two changes within one microsecond.
        let last = sqlx::query(&$q("SELECT MAX(created_at_int) FROM password WHERE local_user_id = ?"))
            .bind(local_id)
            .fetch_one(&mut *$tx)
            .await?;
        let last: Option<i64> = last.try_get(0)?;
        let mut created_int = $now.and_utc().timestamp_micros();
        if let Some(last) = last {
            created_int = created_int.max(last + 1);
        }
        sqlx::query(&$q(
            "INSERT INTO password (local_user_id, self_service, password_hash, created_at_int, created_at) VALUES (?, ?, ?, ?, ?)",
        ))
        .bind(local_id)
        .bind(false)
        .bind($hash)
        .bind(created_int)
        .bind($pool.ts($now))
        .execute(&mut *$tx)
        .await?;
    }};
}

pub(crate) use insert_password;

impl Store {
    pub async fn get_user(&self, user_id: &str) -> Result<Option<User>> {
        dispatch!(self, read, |pool, q| {
            let sql = format!("{USER_COLUMNS} WHERE u.id = ?");
            let row = sqlx::query(&q(&sql))
                .bind(user_id)
                .fetch_optional(pool)
                .await?;
            Ok(match row {
                Some(row) => Some(user_from_row!(row)),
                None => None,
            })
        })
    }

    /// Finds a user by name within a domain (names are unique per domain).
    pub async fn find_user(&self, name: &str, domain_id: &str) -> Result<Option<User>> {
        dispatch!(self, read, |pool, q| {
            let sql = format!(
                "{USER_COLUMNS} WHERE u.domain_id = ? AND (lu.name = ? OR (lu.name IS NULL AND nu.name = ?))"
            );
            let row = sqlx::query(&q(&sql))
                .bind(domain_id)
                .bind(name)
                .bind(name)
                .fetch_optional(pool)
                .await?;
            Ok(match row {
                Some(row) => Some(user_from_row!(row)),
                None => None,
            })
        })
    }

    /// The current password of a local user: Keystone orders passwords by `created_at_int` and
    /// uses the last one.
    pub async fn get_password(&self, user_id: &str) -> Result<Option<PasswordRecord>> {
        dispatch!(self, read, |pool, q| {
            let row = sqlx::query(&q(
                "SELECT p.password_hash, p.expires_at_int, p.expires_at, p.self_service FROM password p \
                 JOIN local_user lu ON lu.id = p.local_user_id WHERE lu.user_id = ? \
                 ORDER BY p.created_at_int DESC, p.id DESC LIMIT 1",
            ))
            .bind(user_id)
            .fetch_optional(pool)
            .await?;
            let Some(row) = row else { return Ok(None) };
            let hash: Option<String> = row.try_get("password_hash")?;
            let Some(hash) = hash else { return Ok(None) };
            let expires_int: Option<i64> = row.try_get("expires_at_int")?;
            let expires_at = match expires_int {
                Some(us) if us != 0 => {
                    chrono::DateTime::from_timestamp_micros(us).map(|t| t.naive_utc())
                }
                _ => row.try_get::<Option<NaiveDateTime>, _>("expires_at")?,
            };
            Ok(Some(PasswordRecord {
                hash,
                expires_at,
                self_service: row
                    .try_get::<Option<bool>, _>("self_service")?
                    .unwrap_or(false),
            }))
        })
    }

    /// Ids of the groups the user is a direct member of.
    pub async fn list_user_group_ids(&self, user_id: &str) -> Result<Vec<String>> {
        dispatch!(self, read, |pool, q| {
            let rows = sqlx::query(&q(
                "SELECT group_id FROM user_group_membership WHERE user_id = ?",
            ))
            .bind(user_id)
            .fetch_all(pool)
            .await?;
            rows.iter()
                .map(|r| r.try_get::<String, _>(0).map_err(Into::into))
                .collect()
        })
    }

    /// Creates a local user with a password hash in one transaction; fails with `Conflict` when
    /// the name is taken in the domain.
    pub async fn create_local_user(
        &self,
        user: &User,
        password_hash: Option<&str>,
        now: NaiveDateTime,
    ) -> Result<()> {
        dispatch!(self, write, |pool, q| {
            let mut tx = crate::begin_write!(pool);
            let taken = sqlx::query(&q(
                "SELECT id FROM local_user WHERE domain_id = ? AND name = ?",
            ))
            .bind(&user.domain_id)
            .bind(&user.name)
            .fetch_optional(&mut *tx)
            .await?;
            if taken.is_some() {
                return Err(crate::StoreError::Conflict(format!(
                    "Duplicate entry found with name {} at domain ID {}.",
                    user.name, user.domain_id
                )));
            }
            sqlx::query(&q(
                "INSERT INTO \"user\" (id, extra, enabled, default_project_id, created_at, domain_id) VALUES (?, ?, ?, ?, ?, ?)",
            ))
            .bind(&user.id)
            .bind(user.extra.as_deref().unwrap_or("{}"))
            .bind(user.enabled)
            .bind(&user.default_project_id)
            .bind(pool.ts(now))
            .bind(&user.domain_id)
            .execute(&mut *tx)
            .await?;
            sqlx::query(&q(
                "INSERT INTO local_user (user_id, domain_id, name, failed_auth_count) VALUES (?, ?, ?, 0)",
            ))
            .bind(&user.id)
            .bind(&user.domain_id)
            .bind(&user.name)
            .execute(&mut *tx)
            .await?;
            if let Some(hash) = password_hash {
                insert_password!(tx, q, pool, &user.id, hash, now);
            }
            tx.commit().await?;
            Ok(())
        })
    }

    /// Adds a new current password for a local user (Keystone keeps the history rows).
    pub async fn set_password(
        &self,
        user_id: &str,
        password_hash: &str,
        now: NaiveDateTime,
    ) -> Result<()> {
        dispatch!(self, write, |pool, q| {
            let mut tx = crate::begin_write!(pool);
            insert_password!(tx, q, pool, user_id, password_hash, now);
            tx.commit().await?;
            Ok(())
        })
    }

    pub async fn set_user_enabled(&self, user_id: &str, enabled: bool) -> Result<()> {
        dispatch!(self, write, |pool, q| {
            sqlx::query(&q("UPDATE \"user\" SET enabled = ? WHERE id = ?"))
                .bind(enabled)
                .bind(user_id)
                .execute(pool)
                .await?;
            Ok(())
        })
    }
}
