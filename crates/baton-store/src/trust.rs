//! Trusts (`trust`, `trust_role`), in Keystone's rows: deletion is soft (`deleted_at`), the
//! expiry is written to both `expires_at` (a `DATETIME`) and `expires_at_int` (Keystone's
//! `DateTimeInt`, microseconds) and read from the latter first, as Keystone's model does.

use chrono::NaiveDateTime;

use crate::identity::or_conflict;
use crate::{dispatch, Result, Store, StoreError, TimestampRepr as _};

/// A trust row with its role ids.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Trust {
    /// Its id (a UUID in hex: trust-scoped Fernet payloads carry it as bytes).
    pub id: String,
    /// The user whose roles are delegated.
    pub trustor_user_id: String,
    /// The user who may use them.
    pub trustee_user_id: String,
    /// The project the roles are delegated on.
    pub project_id: Option<String>,
    /// Whether its tokens show the trustor as their user.
    pub impersonation: bool,
    /// Set when deleted (rows are kept, as Keystone keeps them).
    pub deleted_at: Option<NaiveDateTime>,
    /// When it stops working.
    pub expires_at: Option<NaiveDateTime>,
    /// Tokens it may still issue; `None` for unlimited.
    pub remaining_uses: Option<i32>,
    /// The trust it was redelegated from.
    pub redelegated_trust_id: Option<String>,
    /// How many more times it may be redelegated.
    pub redelegation_count: Option<i32>,
    /// Attributes that are not columns (Keystone's JSON blob).
    pub extra: Option<String>,
    /// The delegated roles.
    pub role_ids: Vec<String>,
}

/// Which trusts a listing selects (not deleted, always).
#[derive(Debug, Clone, Default)]
pub struct TrustFilter {
    /// Only this trustor's.
    pub trustor_user_id: Option<String>,
    /// Only this trustee's.
    pub trustee_user_id: Option<String>,
    /// Only those redelegated from this trust.
    pub redelegated_trust_id: Option<String>,
}

/// What consuming one use of a trust found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TrustUse {
    /// The trust has no use limit.
    Unlimited,
    /// One use was taken.
    Consumed,
    /// No use was left (another issue took the last one).
    Exhausted,
    /// No such trust (or deleted).
    Missing,
}

fn to_micros(t: NaiveDateTime) -> i64 {
    t.and_utc().timestamp_micros()
}

fn from_micros(v: i64) -> NaiveDateTime {
    chrono::DateTime::from_timestamp_micros(v)
        .unwrap_or_default()
        .naive_utc()
}

const TRUST_COLUMNS: &str = "SELECT id, trustor_user_id, trustee_user_id, project_id, \
    impersonation, deleted_at, expires_at, expires_at_int, remaining_uses, \
    redelegated_trust_id, redelegation_count, extra FROM trust";

macro_rules! trust_from_row {
    ($row:expr) => {{
        let at_int: Option<i64> = $row.try_get("expires_at_int")?;
        let at: Option<NaiveDateTime> = $row.try_get("expires_at")?;
        Trust {
            id: $row.try_get("id")?,
            trustor_user_id: $row.try_get("trustor_user_id")?,
            trustee_user_id: $row.try_get("trustee_user_id")?,
            project_id: $row.try_get("project_id")?,
            impersonation: $row.try_get("impersonation")?,
            deleted_at: $row.try_get("deleted_at")?,
            expires_at: at_int.map(from_micros).or(at),
            remaining_uses: $row.try_get("remaining_uses")?,
            redelegated_trust_id: $row.try_get("redelegated_trust_id")?,
            redelegation_count: $row.try_get("redelegation_count")?,
            extra: $row.try_get("extra")?,
            role_ids: Vec::new(),
        }
    }};
}

/// Reads the trusts a `WHERE` clause selects, each with its role ids.
macro_rules! load_trusts {
    ($pool:expr, $q:expr, $where:expr, $binds:expr) => {{
        let sql = format!("{TRUST_COLUMNS} {} ORDER BY id", $where);
        let text = $q(&sql);
        let mut query = sqlx::query(&text);
        for b in $binds {
            query = query.bind(b);
        }
        let rows = query.fetch_all($pool).await?;
        let mut out = Vec::with_capacity(rows.len());
        for row in rows {
            let mut trust = trust_from_row!(row);
            let roles = sqlx::query(&$q(
                "SELECT role_id FROM trust_role WHERE trust_id = ? ORDER BY role_id",
            ))
            .bind(&trust.id)
            .fetch_all($pool)
            .await?;
            for r in roles {
                trust.role_ids.push(r.try_get("role_id")?);
            }
            out.push(trust);
        }
        out
    }};
}

/// Keystone's conflict detail for a trust row that exists already (it names the new id).
fn duplicate(id: &str) -> StoreError {
    StoreError::Conflict(format!("trust - Duplicate entry found with ID {id}."))
}

impl Store {
    /// Stores a trust and its roles in one transaction; `Conflict` when the same trustor,
    /// trustee, project, impersonation and expiry exist already (Keystone's unique constraint).
    pub async fn create_trust(&self, trust: &Trust) -> Result<()> {
        dispatch!(self, write, |pool, q| {
            let mut tx = crate::begin_write!(pool);
            sqlx::query(&q(
                "INSERT INTO trust (id, trustor_user_id, trustee_user_id, project_id, impersonation, \
                 deleted_at, expires_at, expires_at_int, remaining_uses, redelegated_trust_id, \
                 redelegation_count, extra) VALUES (?, ?, ?, ?, ?, NULL, ?, ?, ?, ?, ?, ?)",
            ))
            .bind(&trust.id)
            .bind(&trust.trustor_user_id)
            .bind(&trust.trustee_user_id)
            .bind(&trust.project_id)
            .bind(trust.impersonation)
            .bind(trust.expires_at.map(|t| pool.ts(t)))
            .bind(trust.expires_at.map(to_micros))
            .bind(trust.remaining_uses)
            .bind(&trust.redelegated_trust_id)
            .bind(trust.redelegation_count)
            .bind(trust.extra.as_deref().unwrap_or("{}"))
            .execute(&mut *tx)
            .await
            .map_err(|e| or_conflict(e, || duplicate(&trust.id)))?;
            for role_id in &trust.role_ids {
                sqlx::query(&q(
                    "INSERT INTO trust_role (trust_id, role_id) VALUES (?, ?)",
                ))
                .bind(&trust.id)
                .bind(role_id)
                .execute(&mut *tx)
                .await
                .map_err(|e| or_conflict(e, || duplicate(&trust.id)))?;
            }
            tx.commit().await?;
            Ok(())
        })
    }

    /// One trust by id, deleted or not (the caller decides what is usable).
    pub async fn get_trust(&self, id: &str) -> Result<Option<Trust>> {
        dispatch!(self, read, |pool, q| {
            let mut found = load_trusts!(pool, q, "WHERE id = ?", [id]);
            Ok(found.pop())
        })
    }

    /// The trusts that are not deleted, optionally of one trustor, one trustee or redelegated
    /// from one trust (expired ones included, as Keystone lists them).
    pub async fn list_trusts(&self, filter: &TrustFilter) -> Result<Vec<Trust>> {
        let mut clauses = vec!["deleted_at IS NULL".to_string()];
        let mut binds: Vec<String> = Vec::new();
        for (column, value) in [
            ("trustor_user_id", &filter.trustor_user_id),
            ("trustee_user_id", &filter.trustee_user_id),
            ("redelegated_trust_id", &filter.redelegated_trust_id),
        ] {
            if let Some(v) = value {
                clauses.push(format!("{column} = ?"));
                binds.push(v.clone());
            }
        }
        let clause = format!("WHERE {}", clauses.join(" AND "));
        dispatch!(self, read, |pool, q| {
            Ok(load_trusts!(pool, q, clause.as_str(), binds.iter()))
        })
    }

    /// Marks a trust deleted at `now`; false when there is none not yet deleted.
    pub async fn delete_trust(&self, id: &str, now: NaiveDateTime) -> Result<bool> {
        dispatch!(self, write, |pool, q| {
            let done = sqlx::query(&q(
                "UPDATE trust SET deleted_at = ? WHERE id = ? AND deleted_at IS NULL",
            ))
            .bind(pool.ts(now))
            .bind(id)
            .execute(pool)
            .await?;
            Ok(done.rows_affected() == 1)
        })
    }

    /// Marks deleted every trust a user is the trustor or trustee of (Keystone's cascade of a
    /// user deletion); returns how many.
    pub async fn delete_trusts_of_user(&self, user_id: &str, now: NaiveDateTime) -> Result<u64> {
        dispatch!(self, write, |pool, q| {
            let done = sqlx::query(&q(
                "UPDATE trust SET deleted_at = ? WHERE deleted_at IS NULL \
                 AND (trustor_user_id = ? OR trustee_user_id = ?)",
            ))
            .bind(pool.ts(now))
            .bind(user_id)
            .bind(user_id)
            .execute(pool)
            .await?;
            Ok(done.rows_affected())
        })
    }

    /// Marks deleted every trust on a project (Keystone's cascade of a project deletion).
    pub async fn delete_trusts_for_project(
        &self,
        project_id: &str,
        now: NaiveDateTime,
    ) -> Result<u64> {
        dispatch!(self, write, |pool, q| {
            let done = sqlx::query(&q(
                "UPDATE trust SET deleted_at = ? WHERE deleted_at IS NULL AND project_id = ?",
            ))
            .bind(pool.ts(now))
            .bind(project_id)
            .execute(pool)
            .await?;
            Ok(done.rows_affected())
        })
    }

    /// Takes one use of a limited trust. One conditional `UPDATE` decides, so two concurrent
    /// issues (on any node, or Keystone's) can never both take the last use.
    pub async fn consume_trust_use(&self, id: &str) -> Result<TrustUse> {
        dispatch!(self, write, |pool, q| {
            let row = sqlx::query(&q(
                "SELECT remaining_uses FROM trust WHERE id = ? AND deleted_at IS NULL",
            ))
            .bind(id)
            .fetch_optional(pool)
            .await?;
            let Some(row) = row else {
                return Ok(TrustUse::Missing);
            };
            let remaining: Option<i32> = row.try_get("remaining_uses")?;
            if remaining.is_none() {
                return Ok(TrustUse::Unlimited);
            }
            let done = sqlx::query(&q("UPDATE trust SET remaining_uses = remaining_uses - 1 \
                 WHERE id = ? AND deleted_at IS NULL AND remaining_uses > 0"))
            .bind(id)
            .execute(pool)
            .await?;
            Ok(if done.rows_affected() == 1 {
                TrustUse::Consumed
            } else {
                TrustUse::Exhausted
            })
        })
    }
}
