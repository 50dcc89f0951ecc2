//! The change feed: one row in the Baton-owned table `baton_change` per write that may change
//! what a token validates to (a revocation event, a role assignment removed, a project disabled,
//! ...). Every node polls a small fingerprint of the table ([`ChangeMark`]) and drops its caches
//! when it moves, so a write on one node reaches every other node's validations within the poll
//! interval instead of the cache's time to live. On PostgreSQL each insert also sends a `NOTIFY`
//! on [`CHANGE_CHANNEL`], so listeners need not wait for their next poll.
//!
//! The table is not part of Keystone's schema; Keystone ignores it, and a database Keystone
//! created gets it from [`Store::ensure_baton_tables`] when a Baton node starts.

use crate::{dispatch, Backend, Dialect, Result, Store};

/// The PostgreSQL `NOTIFY` channel a change is announced on.
pub const CHANGE_CHANNEL: &str = "baton_change";

/// A fingerprint of the change table: it differs between two reads whenever a row was added
/// or removed in between, including a row that committed after rows with higher ids (which a
/// plain "highest id" would miss on PostgreSQL, MySQL and Galera).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ChangeMark {
    /// Rows in the table.
    pub count: i64,
    /// The highest id.
    pub max_id: i64,
    /// The sum of the ids (moves when one row commits late while another is pruned).
    pub id_sum: i64,
    /// When the newest change was written (milliseconds since the epoch, by the writer's clock).
    pub newest_at_ms: i64,
}

/// `baton_change`'s definition in `dialect` (created by [`Store::ensure_baton_tables`]).
pub(crate) fn change_table_ddl(dialect: Dialect) -> &'static str {
    match dialect {
        Dialect::Sqlite => {
            "CREATE TABLE IF NOT EXISTS baton_change (id INTEGER PRIMARY KEY AUTOINCREMENT, \
             kind VARCHAR(32) NOT NULL, changed_at BIGINT NOT NULL)"
        }
        Dialect::Postgres => {
            "CREATE TABLE IF NOT EXISTS baton_change (id BIGSERIAL PRIMARY KEY, \
             kind VARCHAR(32) NOT NULL, changed_at BIGINT NOT NULL)"
        }
        // Galera replicates InnoDB tables with a primary key only.
        Dialect::MySql => {
            "CREATE TABLE IF NOT EXISTS baton_change (id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY, \
             kind VARCHAR(32) NOT NULL, changed_at BIGINT NOT NULL) ENGINE=InnoDB"
        }
    }
}

impl Store {
    /// Records one change of `kind` written at `at_ms` (milliseconds since the epoch). It
    /// commits on its own, after the write it announces, so a node that sees it also sees the
    /// write.
    pub async fn record_change(&self, kind: &str, at_ms: i64) -> Result<()> {
        const INSERT: &str = "INSERT INTO baton_change (kind, changed_at) VALUES (?, ?)";
        match &self.backend {
            Backend::Postgres(pool) => {
                let mut tx = pool.begin().await?;
                sqlx::query(&crate::sql_postgres(INSERT))
                    .bind(kind)
                    .bind(at_ms)
                    .execute(&mut *tx)
                    .await?;
                // Delivered to listeners when the transaction commits, not before.
                sqlx::query("SELECT pg_notify($1, $2)")
                    .bind(CHANGE_CHANNEL)
                    .bind(kind)
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
                Ok(())
            }
            _ => dispatch!(self, write, |pool, q| {
                sqlx::query(&q(INSERT))
                    .bind(kind)
                    .bind(at_ms)
                    .execute(pool)
                    .await?;
                Ok(())
            }),
        }
    }

    /// The table's current [`ChangeMark`]; one indexed aggregate over a table kept small by
    /// [`Store::prune_changes`].
    pub async fn change_mark(&self) -> Result<ChangeMark> {
        // SUM of a BIGINT is NUMERIC on PostgreSQL and DECIMAL on MySQL: cast it back.
        let sql = match self.dialect() {
            Dialect::Sqlite => {
                "SELECT COUNT(*), COALESCE(MAX(id), 0), COALESCE(SUM(id), 0), \
                 COALESCE(MAX(changed_at), 0) FROM baton_change"
            }
            Dialect::Postgres => {
                "SELECT COUNT(*), COALESCE(MAX(id), 0), CAST(COALESCE(SUM(id), 0) AS BIGINT), \
                 COALESCE(MAX(changed_at), 0) FROM baton_change"
            }
            Dialect::MySql => {
                "SELECT COUNT(*), COALESCE(MAX(id), 0), CAST(COALESCE(SUM(id), 0) AS SIGNED), \
                 CAST(COALESCE(MAX(changed_at), 0) AS SIGNED) FROM baton_change"
            }
        };
        dispatch!(self, read, |pool, _q| {
            let row = sqlx::query(sql).fetch_one(pool).await?;
            Ok(ChangeMark {
                count: row.try_get::<i64, _>(0)?,
                max_id: row.try_get::<i64, _>(1)?,
                id_sum: row.try_get::<i64, _>(2)?,
                newest_at_ms: row.try_get::<i64, _>(3)?,
            })
        })
    }

    /// Deletes changes written before `before_ms`; returns how many. Every node notices the
    /// deletion as a change (one extra cache flush), so callers prune rarely.
    pub async fn prune_changes(&self, before_ms: i64) -> Result<u64> {
        dispatch!(self, write, |pool, q| {
            let done = sqlx::query(&q("DELETE FROM baton_change WHERE changed_at < ?"))
                .bind(before_ms)
                .execute(pool)
                .await?;
            Ok(done.rows_affected())
        })
    }

    /// On PostgreSQL, a listener woken by every change any node records; `None` elsewhere
    /// (those databases are polled only).
    pub async fn listen_changes(&self) -> Result<Option<ChangeListener>> {
        match &self.backend {
            Backend::Postgres(pool) => {
                let mut listener = sqlx::postgres::PgListener::connect_with(pool).await?;
                listener.listen(CHANGE_CHANNEL).await?;
                Ok(Some(ChangeListener { listener }))
            }
            _ => Ok(None),
        }
    }
}

/// A PostgreSQL `LISTEN` on [`CHANGE_CHANNEL`].
pub struct ChangeListener {
    listener: sqlx::postgres::PgListener,
}

impl ChangeListener {
    /// Waits for the next notification. After a lost connection sqlx reconnects and listens
    /// again; notifications sent meanwhile are lost, which the poll covers.
    pub async fn next(&mut self) -> Result<()> {
        self.listener.recv().await?;
        Ok(())
    }
}
