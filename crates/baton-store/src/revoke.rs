//! Revocation events.

use chrono::NaiveDateTime;

use crate::{dispatch, Result, RevocationEvent, Store, TimestampRepr as _};

macro_rules! event_from_row {
    ($row:expr) => {
        RevocationEvent {
            id: $row
                .try_get::<i64, _>("id")
                .or_else(|_| $row.try_get::<i32, _>("id").map(i64::from))?,
            domain_id: $row.try_get("domain_id")?,
            project_id: $row.try_get("project_id")?,
            user_id: $row.try_get("user_id")?,
            role_id: $row.try_get("role_id")?,
            trust_id: $row.try_get("trust_id")?,
            consumer_id: $row.try_get("consumer_id")?,
            access_token_id: $row.try_get("access_token_id")?,
            issued_before: $row.try_get("issued_before")?,
            expires_at: $row.try_get("expires_at")?,
            revoked_at: $row.try_get("revoked_at")?,
            audit_id: $row.try_get("audit_id")?,
            audit_chain_id: $row.try_get("audit_chain_id")?,
        }
    };
}

const EVENT_COLUMNS: &str = "SELECT id, domain_id, project_id, user_id, role_id, trust_id, consumer_id, \
     access_token_id, issued_before, expires_at, revoked_at, audit_id, audit_chain_id FROM revocation_event";

impl Store {
    /// Stores a revocation event, then prunes events revoked before `prune_before`.
    ///
    /// Keystone prunes after `expiration + [revoke] expiration_buffer`, which is shorter than
    /// `allow_expired_window`: a revoked token then validates again through `allow_expired`.
    /// Callers pass a cutoff that covers the whole window.
    pub async fn add_revocation_event(
        &self,
        ev: &RevocationEvent,
        prune_before: NaiveDateTime,
    ) -> Result<()> {
        dispatch!(self, write, |pool, q| {
            let mut tx = crate::begin_write!(pool);
            sqlx::query(&q(
                "INSERT INTO revocation_event (domain_id, project_id, user_id, role_id, trust_id, consumer_id, \
                 access_token_id, issued_before, expires_at, revoked_at, audit_id, audit_chain_id) \
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            ))
            .bind(&ev.domain_id)
            .bind(&ev.project_id)
            .bind(&ev.user_id)
            .bind(&ev.role_id)
            .bind(&ev.trust_id)
            .bind(&ev.consumer_id)
            .bind(&ev.access_token_id)
            .bind(pool.ts(ev.issued_before))
            .bind(ev.expires_at.map(|t| pool.ts(t)))
            .bind(pool.ts(ev.revoked_at))
            .bind(&ev.audit_id)
            .bind(&ev.audit_chain_id)
            .execute(&mut *tx)
            .await?;
            sqlx::query(&q("DELETE FROM revocation_event WHERE revoked_at < ?"))
                .bind(pool.ts(prune_before))
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            Ok(())
        })
    }

    /// Events with an id above `after_id`, oldest first: the validation path keeps all events in
    /// memory and polls for new ones (written by this or another node).
    pub async fn list_revocation_events_after(
        &self,
        after_id: i64,
    ) -> Result<Vec<RevocationEvent>> {
        dispatch!(self, read, |pool, q| {
            let sql = format!("{EVENT_COLUMNS} WHERE id > ? ORDER BY id");
            let rows = sqlx::query(&q(&sql)).bind(after_id).fetch_all(pool).await?;
            let mut out = Vec::with_capacity(rows.len());
            for row in rows {
                out.push(event_from_row!(row));
            }
            Ok(out)
        })
    }

    /// The lowest event id still stored, to notice pruning by another node.
    pub async fn revocation_event_count(&self) -> Result<i64> {
        dispatch!(self, read, |pool, q| {
            let row = sqlx::query(&q("SELECT COUNT(*) FROM revocation_event"))
                .fetch_one(pool)
                .await?;
            Ok(row.try_get::<i64, _>(0)?)
        })
    }
}
