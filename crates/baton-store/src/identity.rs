//! Users, their passwords and group memberships.

use chrono::{NaiveDate, NaiveDateTime};

use std::collections::HashMap;

use crate::{
    dispatch, PasswordRecord, Result, Store, StoreError, TimestampRepr as _, User, UserFilter,
    UserUpdate,
};

const USER_COLUMNS: &str =
    "SELECT u.id, COALESCE(lu.name, nu.name) AS name, u.domain_id, u.enabled, \
     u.default_project_id, u.extra, u.created_at, u.last_active_at, \
     (SELECT uo.option_value FROM user_option uo \
      WHERE uo.user_id = u.id AND uo.option_id = '1004') AS ignore_user_inactivity \
     FROM \"user\" u \
     LEFT JOIN local_user lu ON lu.user_id = u.id \
     LEFT JOIN nonlocal_user nu ON nu.user_id = u.id";

/// A user row with `enabled` as Keystone shows it: also false for a user inactive for
/// `$inactivity` days (see [`inactive`]).
macro_rules! user_from_row {
    ($row:expr, $inactivity:expr) => {{
        let created_at: Option<NaiveDateTime> = $row.try_get("created_at")?;
        let enabled = $row.try_get::<Option<bool>, _>("enabled")?.unwrap_or(false)
            && !inactive(
                $inactivity,
                $row.try_get("last_active_at")?,
                created_at,
                $row.try_get("ignore_user_inactivity")?,
                chrono::Utc::now().date_naive(),
            );
        User {
            id: $row.try_get("id")?,
            name: $row
                .try_get::<Option<String>, _>("name")?
                .unwrap_or_default(),
            domain_id: $row.try_get("domain_id")?,
            enabled,
            default_project_id: $row.try_get("default_project_id")?,
            extra: $row.try_get("extra")?,
            created_at,
        }
    }};
}

/// `[security_compliance] disable_user_account_days_inactive`, as Keystone's user model reads
/// it: a user whose last successful password login (or, never having logged in, whose creation)
/// is `days` or more days before `today` counts as disabled, unless their
/// `ignore_user_inactivity` option (id 1004, JSON `true`) exempts them. The `enabled` column is
/// left alone, so re-enabling (which resets `last_active_at`) or lifting the option brings
/// the user back.
pub fn inactive(
    days: Option<u32>,
    last_active_at: Option<NaiveDate>,
    created_at: Option<NaiveDateTime>,
    ignore_user_inactivity: Option<String>,
    today: NaiveDate,
) -> bool {
    let Some(days) = days else {
        return false;
    };
    let Some(last_active) = last_active_at.or(created_at.map(|c| c.date())) else {
        return false;
    };
    let exempt =
        ignore_user_inactivity.is_some_and(|v| serde_json::from_str::<bool>(&v).unwrap_or(false));
    (today - last_active).num_days() >= i64::from(days) && !exempt
}

/// Inserts a `password` row for the local user of `user_id` as the new current password,
/// filling both the legacy datetime columns and the microsecond integers Keystone reads. Like
/// Keystone's password setter, older passwords are marked expired now and only the newest
/// `$keep` of them are kept as history (`[security_compliance] unique_last_password_count`, at
/// least 1; see [`Store::set_password_history`]). `$self_service` marks a change the user made
/// themselves (`POST /v3/users/{id}/password`).
macro_rules! insert_password {
    ($tx:ident, $q:ident, $pool:ident, $user_id:expr, $hash:expr, $now:expr) => {
        crate::identity::insert_password!($tx, $q, $pool, $user_id, $hash, $now, false, 1)
    };
    ($tx:ident, $q:ident, $pool:ident, $user_id:expr, $hash:expr, $now:expr, $self_service:expr, $keep:expr) => {{
        let local = sqlx::query(&$q("SELECT id FROM local_user WHERE user_id = ?"))
            .bind($user_id)
            .fetch_optional(&mut *$tx)
            .await?
            .ok_or_else(|| crate::StoreError::NotFound {
                kind: "local user",
                id: $user_id.to_string(),
            })?;
        let local_id: i64 = local.try_get::<i64, _>(0).or_else(|_| local.try_get::<i32, _>(0).map(i64::from))?;
        let now_int = $now.and_utc().timestamp_micros();
        // History: keep the newest `$keep` old passwords, drop the rest, expire what is kept.
        let old = sqlx::query(&$q(
            "SELECT id, created_at_int FROM password WHERE local_user_id = ? ORDER BY created_at_int DESC, id DESC",
        ))
        .bind(local_id)
        .fetch_all(&mut *$tx)
        .await?;
        let mut last: Option<i64> = None;
        for (i, row) in old.iter().enumerate() {
            let id: i64 = row.try_get::<i64, _>(0).or_else(|_| row.try_get::<i32, _>(0).map(i64::from))?;
            if i == 0 {
                last = Some(row.try_get::<i64, _>(1)?);
            }
            if i < $keep {
                sqlx::query(&$q(
                    "UPDATE password SET expires_at = ?, expires_at_int = ? WHERE id = ? AND (expires_at_int IS NULL OR expires_at_int = 0 OR expires_at_int > ?)",
                ))
                .bind($pool.ts($now))
                .bind(now_int)
                .bind(id)
                .bind(now_int)
                .execute(&mut *$tx)
                .await?;
            } else {
                sqlx::query(&$q("DELETE FROM password WHERE id = ?"))
                    .bind(id)
                    .execute(&mut *$tx)
                    .await?;
            }
        }
        // Keep created_at_int strictly increasing so "the newest password" is well defined
        // even for two changes within one microsecond.
        let mut created_int = now_int;
        if let Some(last) = last {
            created_int = created_int.max(last + 1);
        }
        sqlx::query(&$q(
            "INSERT INTO password (local_user_id, self_service, password_hash, created_at_int, created_at) VALUES (?, ?, ?, ?, ?)",
        ))
        .bind(local_id)
        .bind($self_service)
        .bind($hash)
        .bind(created_int)
        .bind($pool.ts($now))
        .execute(&mut *$tx)
        .await?;
    }};
}

pub(crate) use insert_password;

/// Keystone's conflict detail for a user name taken in its domain; the API prefixes it with
/// "Conflict occurred attempting to store ".
pub(crate) fn duplicate_user(name: &str, domain_id: Option<&str>) -> StoreError {
    StoreError::Conflict(match domain_id {
        Some(d) => format!("user - Duplicate entry found with name {name} at domain ID {d}."),
        None => format!("user - Duplicate entry found with name {name}."),
    })
}

/// A unique-key violation from a concurrent writer is the same conflict the pre-check reports.
pub(crate) fn or_conflict(e: sqlx::Error, conflict: impl FnOnce() -> StoreError) -> StoreError {
    match &e {
        sqlx::Error::Database(db) if db.is_unique_violation() => conflict(),
        _ => StoreError::Database(e),
    }
}

/// Ids per `IN (...)` list, well under every dialect's parameter limit.
pub(crate) const IN_CHUNK: usize = 500;

pub(crate) fn marks(n: usize) -> String {
    vec!["?"; n].join(", ")
}

/// Renames a user (its `local_user` row, else its `nonlocal_user` one), refusing a name
/// another user of the domain has: `$conflict` makes that error.
macro_rules! rename_user {
    ($tx:ident, $q:ident, $user_id:expr, $domain_id:expr, $name:expr, $conflict:expr) => {{
        let taken = sqlx::query(&$q(
            "SELECT user_id FROM local_user WHERE domain_id = ? AND name = ? AND user_id <> ?",
        ))
        .bind($domain_id)
        .bind($name)
        .bind($user_id)
        .fetch_optional(&mut *$tx)
        .await?;
        if taken.is_some() {
            return Err($conflict());
        }
        let done = sqlx::query(&$q("UPDATE local_user SET name = ? WHERE user_id = ?"))
            .bind($name)
            .bind($user_id)
            .execute(&mut *$tx)
            .await
            .map_err(|e| or_conflict(e, $conflict))?;
        if done.rows_affected() == 0 {
            sqlx::query(&$q("UPDATE nonlocal_user SET name = ? WHERE user_id = ?"))
                .bind($name)
                .bind($user_id)
                .execute(&mut *$tx)
                .await
                .map_err(|e| or_conflict(e, $conflict))?;
        }
    }};
}

/// Sets or (with a `None` value) removes resource options of a user, `(option_id, JSON)`.
macro_rules! set_user_options {
    ($tx:ident, $q:ident, $user_id:expr, $options:expr) => {
        for (option_id, value) in $options {
            sqlx::query(&$q(
                "DELETE FROM user_option WHERE user_id = ? AND option_id = ?",
            ))
            .bind($user_id)
            .bind(option_id)
            .execute(&mut *$tx)
            .await?;
            if let Some(value) = value {
                sqlx::query(&$q(
                    "INSERT INTO user_option (user_id, option_id, option_value) VALUES (?, ?, ?)",
                ))
                .bind($user_id)
                .bind(option_id)
                .bind(value)
                .execute(&mut *$tx)
                .await?;
            }
        }
    };
}

/// The ids of the local and federated users with a name in a domain (binds: domain, name,
/// domain, name), each found by its table's `(domain_id, name)` index.
const NAMED_USER_IDS: &str = "SELECT user_id FROM local_user WHERE domain_id = ? AND name = ? \
     UNION ALL SELECT user_id FROM nonlocal_user WHERE domain_id = ? AND name = ?";

impl Store {
    /// A user by id, local or federated.
    pub async fn get_user(&self, user_id: &str) -> Result<Option<User>> {
        let inactivity = self.user_inactivity_days;
        dispatch!(self, read, |pool, q| {
            let sql = format!("{USER_COLUMNS} WHERE u.id = ?");
            let row = sqlx::query(&q(&sql))
                .bind(user_id)
                .fetch_optional(pool)
                .await?;
            Ok(match row {
                Some(row) => Some(user_from_row!(row, inactivity)),
                None => None,
            })
        })
    }

    /// Finds a user by name within a domain (names are unique per domain).
    pub async fn find_user(&self, name: &str, domain_id: &str) -> Result<Option<User>> {
        let inactivity = self.user_inactivity_days;
        dispatch!(self, read, |pool, q| {
            // The `IN` finds the user through the `(domain_id, name)` indexes; the outer rule
            // (a local name wins over a federated one) is Keystone's.
            let sql = format!(
                "{USER_COLUMNS} WHERE u.id IN ({NAMED_USER_IDS}) \
                 AND u.domain_id = ? AND (lu.name = ? OR (lu.name IS NULL AND nu.name = ?))"
            );
            let row = sqlx::query(&q(&sql))
                .bind(domain_id)
                .bind(name)
                .bind(domain_id)
                .bind(name)
                .bind(domain_id)
                .bind(name)
                .bind(name)
                .fetch_optional(pool)
                .await?;
            Ok(match row {
                Some(row) => Some(user_from_row!(row, inactivity)),
                None => None,
            })
        })
    }

    /// The current password of a local user: Keystone orders passwords by `created_at_int` and
    /// uses the last one.
    pub async fn get_password(&self, user_id: &str) -> Result<Option<PasswordRecord>> {
        dispatch!(self, read, |pool, q| {
            let row = sqlx::query(&q(
                "SELECT p.password_hash, p.expires_at_int, p.expires_at, p.self_service, p.created_at_int FROM password p \
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
            let created_int: Option<i64> = row.try_get("created_at_int")?;
            Ok(Some(PasswordRecord {
                hash,
                expires_at,
                created_at: created_int
                    .and_then(chrono::DateTime::from_timestamp_micros)
                    .map(|t| t.naive_utc()),
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
        self.create_user_with_options(user, password_hash.map(Some), &[], now)
            .await
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
            insert_password!(
                tx,
                q,
                pool,
                user_id,
                password_hash,
                now,
                false,
                self.password_history
            );
            tx.commit().await?;
            Ok(())
        })
    }

    /// Enables or disables a user (a disabled user's tokens stop validating).
    pub async fn set_user_enabled(&self, user_id: &str, enabled: bool) -> Result<()> {
        let active = self.active_since_enabling(enabled, chrono::Utc::now().naive_utc());
        dispatch!(self, write, |pool, q| {
            sqlx::query(&q(
                "UPDATE \"user\" SET enabled = ?, last_active_at = COALESCE(?, last_active_at) WHERE id = ?",
            ))
            .bind(enabled)
            .bind(active)
            .bind(user_id)
                .execute(pool)
                .await?;
            Ok(())
        })
    }
}

/// The user listing and update/delete side of the identity data (the admin API).
impl Store {
    /// Users matching `filter`, in id order.
    pub async fn list_users(&self, filter: &UserFilter) -> Result<Vec<User>> {
        let inactivity = self.user_inactivity_days;
        let mut sql = format!("{USER_COLUMNS} WHERE 1 = 1");
        // A name is found through the name indexes first (binds in the order they appear).
        match (&filter.name, &filter.domain_id) {
            (Some(_), Some(_)) => sql.push_str(&format!(" AND u.id IN ({NAMED_USER_IDS})")),
            (Some(_), None) => sql.push_str(
                " AND u.id IN (SELECT user_id FROM local_user WHERE name = ? \
                 UNION ALL SELECT user_id FROM nonlocal_user WHERE name = ?)",
            ),
            _ => {}
        }
        if filter.domain_id.is_some() {
            sql.push_str(" AND u.domain_id = ?");
        }
        if filter.name.is_some() {
            sql.push_str(" AND (lu.name = ? OR (lu.name IS NULL AND nu.name = ?))");
        }
        if filter.enabled.is_some() {
            sql.push_str(" AND u.enabled = ?");
        }
        sql.push_str(" ORDER BY u.id");
        dispatch!(self, read, |pool, q| {
            let sql = q(&sql);
            let mut query = sqlx::query(&sql);
            match (&filter.name, &filter.domain_id) {
                (Some(n), Some(d)) => query = query.bind(d).bind(n).bind(d).bind(n),
                (Some(n), None) => query = query.bind(n).bind(n),
                _ => {}
            }
            if let Some(d) = &filter.domain_id {
                query = query.bind(d);
            }
            if let Some(n) = &filter.name {
                query = query.bind(n).bind(n);
            }
            if let Some(e) = filter.enabled {
                query = query.bind(e);
            }
            let rows = query.fetch_all(pool).await?;
            let mut out = Vec::with_capacity(rows.len());
            for row in rows {
                out.push(user_from_row!(row, inactivity));
            }
            Ok(out)
        })
    }

    /// Members of a group (direct memberships), in id order.
    pub async fn list_users_in_group(&self, group_id: &str) -> Result<Vec<User>> {
        let inactivity = self.user_inactivity_days;
        dispatch!(self, read, |pool, q| {
            let sql = format!(
                "{USER_COLUMNS} JOIN user_group_membership m ON m.user_id = u.id WHERE m.group_id = ? ORDER BY u.id"
            );
            let rows = sqlx::query(&q(&sql)).bind(group_id).fetch_all(pool).await?;
            let mut out = Vec::with_capacity(rows.len());
            for row in rows {
                out.push(user_from_row!(row, inactivity));
            }
            Ok(out)
        })
    }

    /// The resource options (`user_option` rows: option id and JSON value) of each user.
    pub async fn user_options(
        &self,
        user_ids: &[String],
    ) -> Result<HashMap<String, Vec<(String, Option<String>)>>> {
        let mut out: HashMap<String, Vec<(String, Option<String>)>> = HashMap::new();
        for chunk in user_ids.chunks(IN_CHUNK) {
            let sql = format!(
                "SELECT user_id, option_id, option_value FROM user_option WHERE user_id IN ({}) ORDER BY user_id, option_id",
                marks(chunk.len())
            );
            let rows: Vec<(String, String, Option<String>)> = dispatch!(self, read, |pool, q| {
                let sql = q(&sql);
                let mut query = sqlx::query(&sql);
                for id in chunk {
                    query = query.bind(id);
                }
                let mut rows = Vec::new();
                for row in query.fetch_all(pool).await? {
                    rows.push((row.try_get(0)?, row.try_get(1)?, row.try_get(2)?));
                }
                Ok::<_, StoreError>(rows)
            })?;
            for (user, option, value) in rows {
                out.entry(user).or_default().push((option, value));
            }
        }
        Ok(out)
    }

    /// When each user's current password expires, for the users whose current password has an
    /// expiry (Keystone's `password_expires_at`).
    pub async fn password_expiries(
        &self,
        user_ids: &[String],
    ) -> Result<HashMap<String, NaiveDateTime>> {
        let mut newest: HashMap<String, (i64, i64, Option<NaiveDateTime>)> = HashMap::new();
        for chunk in user_ids.chunks(IN_CHUNK) {
            let sql = format!(
                "SELECT lu.user_id, p.created_at_int, p.id, p.expires_at_int, p.expires_at FROM password p \
                 JOIN local_user lu ON lu.id = p.local_user_id WHERE lu.user_id IN ({})",
                marks(chunk.len())
            );
            dispatch!(self, read, |pool, q| {
                let sql = q(&sql);
                let mut query = sqlx::query(&sql);
                for id in chunk {
                    query = query.bind(id);
                }
                for row in query.fetch_all(pool).await? {
                    let user: String = row.try_get(0)?;
                    let created: i64 = row.try_get(1)?;
                    let id: i64 = row
                        .try_get::<i64, _>(2)
                        .or_else(|_| row.try_get::<i32, _>(2).map(i64::from))?;
                    let expires_int: Option<i64> = row.try_get(3)?;
                    let expires = match expires_int {
                        Some(us) if us != 0 => {
                            chrono::DateTime::from_timestamp_micros(us).map(|t| t.naive_utc())
                        }
                        _ => row.try_get::<Option<NaiveDateTime>, _>(4)?,
                    };
                    let slot = newest.entry(user).or_insert((i64::MIN, i64::MIN, None));
                    if (created, id) > (slot.0, slot.1) {
                        *slot = (created, id, expires);
                    }
                }
                Ok::<_, StoreError>(())
            })?;
        }
        Ok(newest
            .into_iter()
            .filter_map(|(user, (_, _, expires))| expires.map(|e| (user, e)))
            .collect())
    }

    /// Creates a local user with its resource options (`(option_id, JSON value)`) and an
    /// optional password (`Some(None)`: a password row without a hash, as Keystone stores
    /// `"password": null`).
    pub async fn create_user_with_options(
        &self,
        user: &User,
        password_hash: Option<Option<&str>>,
        options: &[(String, String)],
        now: NaiveDateTime,
    ) -> Result<()> {
        let conflict = || duplicate_user(&user.name, Some(&user.domain_id));
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
                return Err(conflict());
            }
            sqlx::query(&q(
                "INSERT INTO \"user\" (id, extra, enabled, default_project_id, created_at, domain_id, last_active_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
            ))
            .bind(&user.id)
            .bind(user.extra.as_deref().unwrap_or("{}"))
            .bind(user.enabled)
            .bind(&user.default_project_id)
            .bind(pool.ts(now))
            .bind(&user.domain_id)
            .bind(self.active_since_enabling(user.enabled, now))
            .execute(&mut *tx)
            .await?;
            sqlx::query(&q(
                "INSERT INTO local_user (user_id, domain_id, name, failed_auth_count) VALUES (?, ?, ?, 0)",
            ))
            .bind(&user.id)
            .bind(&user.domain_id)
            .bind(&user.name)
            .execute(&mut *tx)
            .await
            .map_err(|e| or_conflict(e, conflict))?;
            for (option_id, value) in options {
                sqlx::query(&q(
                    "INSERT INTO user_option (user_id, option_id, option_value) VALUES (?, ?, ?)",
                ))
                .bind(&user.id)
                .bind(option_id)
                .bind(value)
                .execute(&mut *tx)
                .await?;
            }
            if let Some(hash) = password_hash {
                insert_password!(
                    tx,
                    q,
                    pool,
                    &user.id,
                    hash,
                    now,
                    false,
                    self.password_history
                );
            }
            tx.commit().await?;
            Ok(())
        })
    }

    /// Applies `update` to a user in one transaction; `NotFound` for an unknown user,
    /// `Conflict` when the new name is taken in the user's domain.
    pub async fn update_user(
        &self,
        user_id: &str,
        update: &UserUpdate,
        now: NaiveDateTime,
    ) -> Result<()> {
        let conflict = || duplicate_user(update.name.as_deref().unwrap_or(""), None);
        dispatch!(self, write, |pool, q| {
            let mut tx = crate::begin_write!(pool);
            let row = sqlx::query(&q("SELECT domain_id FROM \"user\" WHERE id = ?"))
                .bind(user_id)
                .fetch_optional(&mut *tx)
                .await?
                .ok_or_else(|| StoreError::NotFound {
                    kind: "user",
                    id: user_id.to_string(),
                })?;
            let domain_id: String = row.try_get(0)?;
            if let Some(name) = &update.name {
                rename_user!(tx, q, user_id, &domain_id, name, conflict);
            }
            if let Some(enabled) = update.enabled {
                sqlx::query(&q(
                    "UPDATE \"user\" SET enabled = ?, last_active_at = COALESCE(?, last_active_at) WHERE id = ?",
                ))
                .bind(enabled)
                .bind(self.active_since_enabling(enabled, now))
                .bind(user_id)
                    .execute(&mut *tx)
                    .await?;
                if enabled {
                    // Keystone's enabled setter forgives failed logins on (re-)enabling.
                    sqlx::query(&q(
                        "UPDATE local_user SET failed_auth_count = 0, failed_auth_at = NULL WHERE user_id = ?",
                    ))
                    .bind(user_id)
                    .execute(&mut *tx)
                    .await?;
                }
            }
            if let Some(project) = &update.default_project_id {
                sqlx::query(&q(
                    "UPDATE \"user\" SET default_project_id = ? WHERE id = ?",
                ))
                .bind(project)
                .bind(user_id)
                .execute(&mut *tx)
                .await?;
            }
            if let Some(extra) = &update.extra {
                sqlx::query(&q("UPDATE \"user\" SET extra = ? WHERE id = ?"))
                    .bind(extra)
                    .bind(user_id)
                    .execute(&mut *tx)
                    .await?;
            }
            set_user_options!(tx, q, user_id, &update.options);
            if let Some(hash) = &update.password_hash {
                let hash = hash.as_deref();
                insert_password!(
                    tx,
                    q,
                    pool,
                    user_id,
                    hash,
                    now,
                    false,
                    self.password_history
                );
            }
            tx.commit().await?;
            Ok(())
        })
    }

    /// A password change the user made themselves (`self_service` set, as Keystone does).
    pub async fn change_own_password(
        &self,
        user_id: &str,
        password_hash: &str,
        now: NaiveDateTime,
    ) -> Result<()> {
        dispatch!(self, write, |pool, q| {
            let mut tx = crate::begin_write!(pool);
            insert_password!(
                tx,
                q,
                pool,
                user_id,
                password_hash,
                now,
                true,
                self.password_history
            );
            tx.commit().await?;
            Ok(())
        })
    }

    /// Deletes a user and everything that hangs off it, as Keystone's user deletion and its
    /// callbacks do: name rows, passwords, options, group memberships, role assignments
    /// (project, domain, system), credentials, application credentials and access rules, the
    /// id mapping, and (soft-deleted, as Keystone does) trusts. Children go first, so foreign
    /// keys hold on every dialect. `false` when there was no such user.
    pub async fn delete_user(&self, user_id: &str, now: NaiveDateTime) -> Result<bool> {
        const CLEANUP: &[&str] = &[
            "DELETE FROM password WHERE local_user_id IN (SELECT id FROM local_user WHERE user_id = ?)",
            "DELETE FROM local_user WHERE user_id = ?",
            "DELETE FROM nonlocal_user WHERE user_id = ?",
            "DELETE FROM federated_user WHERE user_id = ?",
            "DELETE FROM user_option WHERE user_id = ?",
            "DELETE FROM user_group_membership WHERE user_id = ?",
            "DELETE FROM expiring_user_group_membership WHERE user_id = ?",
            "DELETE FROM assignment WHERE actor_id = ? AND type IN ('UserProject', 'UserDomain')",
            "DELETE FROM system_assignment WHERE actor_id = ? AND type = 'UserSystem'",
            "DELETE FROM credential WHERE user_id = ?",
            "DELETE FROM application_credential_role WHERE application_credential_id IN (SELECT internal_id FROM application_credential WHERE user_id = ?)",
            "DELETE FROM application_credential_access_rule WHERE application_credential_id IN (SELECT internal_id FROM application_credential WHERE user_id = ?)",
            "DELETE FROM application_credential_access_rule WHERE access_rule_id IN (SELECT id FROM access_rule WHERE user_id = ?)",
            "DELETE FROM application_credential WHERE user_id = ?",
            "DELETE FROM access_rule WHERE user_id = ?",
            "DELETE FROM id_mapping WHERE public_id = ?",
        ];
        dispatch!(self, write, |pool, q| {
            let mut tx = crate::begin_write!(pool);
            let exists = sqlx::query(&q("SELECT id FROM \"user\" WHERE id = ?"))
                .bind(user_id)
                .fetch_optional(&mut *tx)
                .await?;
            if exists.is_none() {
                return Ok(false);
            }
            for sql in CLEANUP {
                sqlx::query(&q(sql)).bind(user_id).execute(&mut *tx).await?;
            }
            sqlx::query(&q(
                "UPDATE \"trust\" SET deleted_at = ? WHERE (trustor_user_id = ? OR trustee_user_id = ?) AND deleted_at IS NULL",
            ))
            .bind(pool.ts(now))
            .bind(user_id)
            .bind(user_id)
            .execute(&mut *tx)
            .await?;
            sqlx::query(&q("DELETE FROM \"user\" WHERE id = ?"))
                .bind(user_id)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            Ok(true)
        })
    }

    /// Whether the user is a direct member of the group.
    pub async fn is_user_in_group(&self, user_id: &str, group_id: &str) -> Result<bool> {
        dispatch!(self, read, |pool, q| {
            let row = sqlx::query(&q(
                "SELECT user_id FROM user_group_membership WHERE user_id = ? AND group_id = ?",
            ))
            .bind(user_id)
            .bind(group_id)
            .fetch_optional(pool)
            .await?;
            Ok(row.is_some())
        })
    }

    /// Adds a user to a group; adding an existing member again is a no-op.
    pub async fn add_user_to_group(&self, user_id: &str, group_id: &str) -> Result<()> {
        dispatch!(self, write, |pool, q| {
            let mut tx = crate::begin_write!(pool);
            let exists = sqlx::query(&q(
                "SELECT user_id FROM user_group_membership WHERE user_id = ? AND group_id = ?",
            ))
            .bind(user_id)
            .bind(group_id)
            .fetch_optional(&mut *tx)
            .await?;
            if exists.is_none() {
                let done = sqlx::query(&q(
                    "INSERT INTO user_group_membership (user_id, group_id) VALUES (?, ?)",
                ))
                .bind(user_id)
                .bind(group_id)
                .execute(&mut *tx)
                .await;
                match done {
                    Ok(_) => {}
                    // Another writer added the same membership first: the outcome is the same.
                    Err(sqlx::Error::Database(e)) if e.is_unique_violation() => {}
                    Err(e) => return Err(e.into()),
                }
            }
            tx.commit().await?;
            Ok(())
        })
    }

    /// Removes a user from a group; `false` when they were not a member.
    pub async fn remove_user_from_group(&self, user_id: &str, group_id: &str) -> Result<bool> {
        dispatch!(self, write, |pool, q| {
            let done = sqlx::query(&q(
                "DELETE FROM user_group_membership WHERE user_id = ? AND group_id = ?",
            ))
            .bind(user_id)
            .bind(group_id)
            .execute(pool)
            .await?;
            Ok(done.rows_affected() > 0)
        })
    }
}

/// A local user's failed password logins in a row (`local_user.failed_auth_count`) and when
/// the last one happened (`failed_auth_at`), as Keystone keeps them for
/// `[security_compliance] lockout_failure_attempts`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FailedLogins {
    /// Failures since the last success (or reset).
    pub count: i64,
    /// The last failure.
    pub last_at: Option<NaiveDateTime>,
}

impl Store {
    /// The user's [`FailedLogins`]; zero for users without a `local_user` row.
    pub async fn failed_logins(&self, user_id: &str) -> Result<FailedLogins> {
        dispatch!(self, read, |pool, q| {
            let row = sqlx::query(&q(
                "SELECT failed_auth_count, failed_auth_at FROM local_user WHERE user_id = ?",
            ))
            .bind(user_id)
            .fetch_optional(pool)
            .await?;
            let Some(row) = row else {
                return Ok(FailedLogins::default());
            };
            let count: Option<i32> = row.try_get(0)?;
            let last_at: Option<NaiveDateTime> = row.try_get(1)?;
            Ok(FailedLogins {
                count: i64::from(count.unwrap_or(0)),
                last_at,
            })
        })
    }

    /// Counts one more failed password login at `at`, in one statement so that concurrent
    /// failures are all counted.
    pub async fn record_failed_login(&self, user_id: &str, at: NaiveDateTime) -> Result<()> {
        dispatch!(self, write, |pool, q| {
            sqlx::query(&q(
                "UPDATE local_user SET failed_auth_count = COALESCE(failed_auth_count, 0) + 1, \
                 failed_auth_at = ? WHERE user_id = ?",
            ))
            .bind(pool.ts(at))
            .bind(user_id)
            .execute(pool)
            .await?;
            Ok(())
        })
    }

    /// Forgets the user's failed logins (a successful login, or a lockout that ran out).
    pub async fn reset_failed_logins(&self, user_id: &str) -> Result<()> {
        dispatch!(self, write, |pool, q| {
            sqlx::query(&q(
                "UPDATE local_user SET failed_auth_count = 0, failed_auth_at = NULL WHERE user_id = ?",
            ))
            .bind(user_id)
            .execute(pool)
            .await?;
            Ok(())
        })
    }
}

impl Store {
    /// Sets when the user's current password expires (Keystone's `password_expires_days` and
    /// `change_password_upon_first_use`), in both the datetime and the microsecond columns.
    pub async fn expire_current_password(&self, user_id: &str, at: NaiveDateTime) -> Result<()> {
        dispatch!(self, write, |pool, q| {
            let mut tx = crate::begin_write!(pool);
            let row = sqlx::query(&q(
                "SELECT p.id FROM password p JOIN local_user lu ON lu.id = p.local_user_id \
                 WHERE lu.user_id = ? ORDER BY p.created_at_int DESC, p.id DESC",
            ))
            .bind(user_id)
            .fetch_optional(&mut *tx)
            .await?;
            if let Some(row) = row {
                let id: i64 = row
                    .try_get::<i64, _>(0)
                    .or_else(|_| row.try_get::<i32, _>(0).map(i64::from))?;
                sqlx::query(&q(
                    "UPDATE password SET expires_at = ?, expires_at_int = ? WHERE id = ?",
                ))
                .bind(pool.ts(at))
                .bind(at.and_utc().timestamp_micros())
                .bind(id)
                .execute(&mut *tx)
                .await?;
            }
            tx.commit().await?;
            Ok(())
        })
    }
}

impl Store {
    /// Keeps `unique_last_password_count` old passwords (at least one, Keystone's default) when
    /// a password is replaced through this store, so the history check can see them.
    pub fn set_password_history(&mut self, unique_last_password_count: u32) {
        self.password_history = (unique_last_password_count as usize).max(1);
    }

    /// Turns on `[security_compliance] disable_user_account_days_inactive` for the users this
    /// store reads (`None`: off, Keystone's default).
    pub fn set_user_inactivity_limit(&mut self, days: Option<u32>) {
        self.user_inactivity_days = days;
    }

    /// The `last_active_at` to write when a user is created or updated with `enabled`: like
    /// Keystone's enabled setter, enabling restarts the inactivity count when the limit is on.
    fn active_since_enabling(&self, enabled: bool, now: NaiveDateTime) -> Option<NaiveDate> {
        (enabled && self.user_inactivity_days.is_some()).then(|| now.date())
    }

    /// Records a successful password login on `today` (Keystone's `last_active_at`, a date),
    /// writing only when the date moved so that logins cost no write most of the time.
    pub async fn record_user_active(&self, user_id: &str, today: NaiveDate) -> Result<()> {
        dispatch!(self, write, |pool, q| {
            sqlx::query(&q(
                "UPDATE \"user\" SET last_active_at = ? WHERE id = ? AND (last_active_at IS NULL OR last_active_at <> ?)",
            ))
            .bind(today)
            .bind(user_id)
            .bind(today)
            .execute(pool)
            .await?;
            Ok(())
        })
    }

    /// The hashes of the user's newest `n` passwords (the current one first).
    pub async fn recent_password_hashes(&self, user_id: &str, n: usize) -> Result<Vec<String>> {
        dispatch!(self, read, |pool, q| {
            let rows = sqlx::query(&q(
                "SELECT p.password_hash FROM password p JOIN local_user lu ON lu.id = p.local_user_id \
                 WHERE lu.user_id = ? ORDER BY p.created_at_int DESC, p.id DESC",
            ))
            .bind(user_id)
            .fetch_all(pool)
            .await?;
            let mut out = Vec::new();
            for row in rows.iter().take(n) {
                if let Some(hash) = row.try_get::<Option<String>, _>(0)? {
                    out.push(hash);
                }
            }
            Ok(out)
        })
    }
}
