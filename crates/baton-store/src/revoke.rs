//! Revocation events.

use chrono::NaiveDateTime;

use crate::{dispatch, int_of, Result, RevocationEvent, Store, TimestampRepr as _};

macro_rules! event_from_row {
    ($row:expr) => {
        RevocationEvent {
            id: int_of!($row, "id"),
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
    /// Stores a revocation event. It commits on its own: the longer an event's transaction,
    /// the longer other nodes see ids above it before they see it.
    pub async fn add_revocation_event(&self, ev: &RevocationEvent) -> Result<()> {
        dispatch!(self, write, |pool, q| {
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
            .execute(pool)
            .await?;
            Ok(())
        })
    }

    /// Deletes events revoked before `before`; returns how many.
    ///
    /// Keystone prunes after `expiration + [revoke] expiration_buffer`, which is shorter than
    /// `allow_expired_window`: a revoked token then validates again through `allow_expired`.
    /// Callers pass a cutoff that covers the whole window. Kept apart from the insert (and off
    /// the request path): on MariaDB a range delete waits behind any writer's uncommitted event.
    pub async fn prune_revocation_events(&self, before: NaiveDateTime) -> Result<u64> {
        dispatch!(self, write, |pool, q| {
            let done = sqlx::query(&q("DELETE FROM revocation_event WHERE revoked_at < ?"))
                .bind(pool.ts(before))
                .execute(pool)
                .await?;
            Ok(done.rows_affected())
        })
    }

    /// Events with an id above `after_id` or among `also_ids`, oldest first: the validation
    /// path keeps all events in memory and polls for new ones (written by this or another
    /// node). `also_ids` are ids below `after_id` that were missing at the last look: on
    /// PostgreSQL and MySQL a row can commit after rows with higher ids.
    pub async fn list_revocation_events(
        &self,
        after_id: i64,
        also_ids: &[i64],
    ) -> Result<Vec<RevocationEvent>> {
        dispatch!(self, read, |pool, q| {
            let mut sql = format!("{EVENT_COLUMNS} WHERE id > ?");
            if !also_ids.is_empty() {
                let marks = vec!["?"; also_ids.len()].join(", ");
                sql.push_str(&format!(" OR id IN ({marks})"));
            }
            sql.push_str(" ORDER BY id");
            let sql = q(&sql);
            let mut query = sqlx::query(&sql).bind(after_id);
            for id in also_ids {
                query = query.bind(*id);
            }
            let rows = query.fetch_all(pool).await?;
            let mut out = Vec::with_capacity(rows.len());
            for row in rows {
                out.push(event_from_row!(row));
            }
            Ok(out)
        })
    }

    /// Hands every stored event to `each`, in id order, as the rows arrive: the start-up load
    /// of a large table never holds it whole (nor pages through it, which SQLite's driver
    /// makes slower page by page). Returns how many there were.
    pub async fn for_each_revocation_event(
        &self,
        mut each: impl FnMut(RevocationEvent) + Send,
    ) -> Result<u64> {
        use futures_util::TryStreamExt as _;
        dispatch!(self, read, |pool, q| {
            let text = format!("{EVENT_COLUMNS} ORDER BY id");
            let sql = q(&text);
            let mut rows = sqlx::query(&sql).fetch(pool);
            let mut n = 0;
            while let Some(row) = rows.try_next().await? {
                each(event_from_row!(row));
                n += 1;
            }
            Ok(n)
        })
    }

    /// The ids of the events above `after_id`, ascending: a recheck compares them with those
    /// it has read and fetches only the missing ones. Streamed: a recheck reads thousands of
    /// ids, and holding every row at once (a few hundred bytes each) left a lasting step in
    /// the allocator's resident memory at each recheck (bench/results/heap-2026-12-06T0221Z.md);
    /// the ids alone are 8 bytes each.
    pub async fn revocation_event_ids(&self, after_id: i64) -> Result<Vec<i64>> {
        use futures_util::TryStreamExt as _;
        dispatch!(self, read, |pool, q| {
            let sql = q("SELECT id FROM revocation_event WHERE id > ? ORDER BY id");
            let mut rows = sqlx::query(&sql).bind(after_id).fetch(pool);
            let mut out = Vec::new();
            while let Some(row) = rows.try_next().await? {
                out.push(int_of!(row, "id"));
            }
            Ok(out)
        })
    }

    /// How many events are stored.
    pub async fn revocation_event_count(&self) -> Result<i64> {
        dispatch!(self, read, |pool, q| {
            let row = sqlx::query(&q("SELECT COUNT(*) FROM revocation_event"))
                .fetch_one(pool)
                .await?;
            Ok(row.try_get::<i64, _>(0)?)
        })
    }
}
