//! Baton's own fleet tables, beside Keystone's schema and outside its migrations:
//!
//! * `baton_key_set`: one row per key repository (`fernet_tokens`, `credential`) holding the
//!   sealed key set and its `version`; every change is a compare-and-swap on `version`, so two
//!   nodes rotating at once never lose a key (one of them fails and changes nothing);
//! * `baton_node`: one row per node and repository, the node's heartbeat with the key set it
//!   holds (fingerprints only, never keys).
//!
//! Both are created `IF NOT EXISTS` by `db_sync` and at server start, so a database Keystone
//! created gets them too; Keystone never reads them and its alembic revisions stay as they are.
//! Times are Unix seconds (BIGINT): the same in every dialect.

use crate::{dispatch, Dialect, Result, Store};

/// A sealed key set as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeySetRow {
    /// `fernet_tokens` or `credential`.
    pub repository: String,
    /// Bumped by every change.
    pub version: i64,
    /// The set sealed with the key-encryption key (a Fernet token).
    pub sealed: String,
    /// When it last changed (Unix seconds).
    pub updated_at: i64,
}

/// One node's heartbeat for one repository.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeRow {
    /// Random per process start.
    pub node_id: String,
    /// `fernet_tokens` or `credential`.
    pub repository: String,
    /// The host name.
    pub name: String,
    /// Where it listens, if known.
    pub address: Option<String>,
    /// When the process started (Unix seconds).
    pub started_at: i64,
    /// Its last heartbeat (Unix seconds).
    pub heartbeat_at: i64,
    /// The version of the shared set it has loaded (`None` with `filesystem` distribution).
    pub key_set_version: Option<i64>,
    /// `index:fingerprint` of every key it holds, comma-separated, by index.
    pub key_fingerprints: String,
    /// The index of its primary key.
    pub primary_key_id: Option<i64>,
    /// Milliseconds the last change it saw on the change feed took to reach it.
    pub change_lag_ms: Option<i64>,
}

fn table_ddl(dialect: Dialect) -> [String; 2] {
    let (text, tail) = match dialect {
        Dialect::MySql => ("LONGTEXT", " ENGINE=InnoDB DEFAULT CHARSET=utf8mb4"),
        _ => ("TEXT", ""),
    };
    [
        format!(
            "CREATE TABLE IF NOT EXISTS baton_key_set (\
             repository VARCHAR(64) NOT NULL PRIMARY KEY, \
             version BIGINT NOT NULL, \
             sealed {text} NOT NULL, \
             updated_at BIGINT NOT NULL){tail}"
        ),
        format!(
            "CREATE TABLE IF NOT EXISTS baton_node (\
             node_id VARCHAR(64) NOT NULL, \
             repository VARCHAR(64) NOT NULL, \
             name VARCHAR(255) NOT NULL, \
             address VARCHAR(255), \
             started_at BIGINT NOT NULL, \
             heartbeat_at BIGINT NOT NULL, \
             key_set_version BIGINT, \
             key_fingerprints {text} NOT NULL, \
             primary_key_id BIGINT, \
             change_lag_ms BIGINT, \
             PRIMARY KEY (node_id, repository)){tail}"
        ),
    ]
}

/// Indexes Baton adds to Keystone's tables so that no request reads a whole table: a local
/// user's passwords (every login), the children of a project (the tree is walked level by
/// level), the assignments on a target (listings by project or domain), and projects and local
/// users by name alone (`openstack project show NAME`, `openstack user show NAME`). MySQL
/// already indexes the first two for their foreign keys. Extra indexes change nothing Keystone
/// reads or writes.
fn index_ddl(dialect: Dialect) -> &'static [&'static str] {
    const EVERYWHERE: [&str; 3] = [
        "CREATE INDEX IF NOT EXISTS ix_baton_assignment_target_id ON assignment (target_id)",
        "CREATE INDEX IF NOT EXISTS ix_baton_project_name ON project (name)",
        "CREATE INDEX IF NOT EXISTS ix_baton_local_user_name ON local_user (name)",
    ];
    match dialect {
        Dialect::MySql => &EVERYWHERE,
        _ => &[
            "CREATE INDEX IF NOT EXISTS ix_baton_password_local_user_id ON password (local_user_id)",
            "CREATE INDEX IF NOT EXISTS ix_baton_project_parent_id ON project (parent_id)",
            EVERYWHERE[0],
            EVERYWHERE[1],
            EVERYWHERE[2],
        ],
    }
}

impl Store {
    /// Creates Baton's own tables unless they exist: `baton_change` (the change feed),
    /// `baton_key_set` and `baton_node`. `db_sync` and every server start call it, so a database
    /// Keystone created works too; Keystone's schema is not touched. Safe from several
    /// processes at once: PostgreSQL's `IF NOT EXISTS` is not (two creators collide on its type
    /// catalog), so there it runs under an advisory lock.
    pub async fn ensure_baton_tables(&self) -> Result<()> {
        let mut ddl = vec![crate::change::change_table_ddl(self.dialect()).to_string()];
        ddl.extend(table_ddl(self.dialect()));
        // Indexes only once Keystone's tables exist (`fernet_setup` may come before `db_sync`).
        if self.schema_is_current().await? {
            ddl.extend(index_ddl(self.dialect()).iter().map(|s| s.to_string()));
        }
        let postgres = self.dialect() == Dialect::Postgres;
        dispatch!(self, write, |pool, _q| {
            let mut tx = crate::begin_write!(pool);
            if postgres {
                sqlx::query("SELECT pg_advisory_xact_lock(7135209)")
                    .execute(&mut *tx)
                    .await?;
            }
            for stmt in &ddl {
                sqlx::query(stmt).execute(&mut *tx).await?;
            }
            tx.commit().await?;
            Ok(())
        })
    }

    /// `(repository, version)` of every shared key set: the cheap poll of every node's tick.
    pub async fn key_set_versions(&self) -> Result<Vec<(String, i64)>> {
        dispatch!(self, read, |pool, q| {
            let rows = sqlx::query(&q("SELECT repository, version FROM baton_key_set"))
                .fetch_all(pool)
                .await?;
            let mut out = Vec::with_capacity(rows.len());
            for row in rows {
                out.push((row.try_get("repository")?, row.try_get("version")?));
            }
            Ok(out)
        })
    }

    /// The sealed set of `repository`, if there is one.
    pub async fn get_key_set(&self, repository: &str) -> Result<Option<KeySetRow>> {
        dispatch!(self, read, |pool, q| {
            let row = sqlx::query(&q(
                "SELECT repository, version, sealed, updated_at FROM baton_key_set WHERE repository = ?",
            ))
            .bind(repository)
            .fetch_optional(pool)
            .await?;
            match row {
                None => Ok(None),
                Some(row) => Ok(Some(KeySetRow {
                    repository: row.try_get("repository")?,
                    version: row.try_get("version")?,
                    sealed: row.try_get("sealed")?,
                    updated_at: row.try_get("updated_at")?,
                })),
            }
        })
    }

    /// Stores the first set of a repository; false (nothing written) when one exists already.
    pub async fn create_key_set(&self, row: &KeySetRow) -> Result<bool> {
        let inserted: Result<()> = async {
            dispatch!(self, write, |pool, q| {
                sqlx::query(&q(
                    "INSERT INTO baton_key_set (repository, version, sealed, updated_at) VALUES (?, ?, ?, ?)",
                ))
                .bind(&row.repository)
                .bind(row.version)
                .bind(&row.sealed)
                .bind(row.updated_at)
                .execute(pool)
                .await?;
                Ok(())
            })
        }
        .await;
        match inserted {
            Ok(()) => Ok(true),
            // Lost a race with another setup (primary key): theirs stands.
            Err(_) if self.get_key_set(&row.repository).await?.is_some() => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Replaces the set of `row.repository` only if it is still at `expected_version`;
    /// whether it was replaced. `row.version` must be above `expected_version`.
    pub async fn swap_key_set(&self, expected_version: i64, row: &KeySetRow) -> Result<bool> {
        dispatch!(self, write, |pool, q| {
            let done = sqlx::query(&q(
                "UPDATE baton_key_set SET version = ?, sealed = ?, updated_at = ? \
                 WHERE repository = ? AND version = ?",
            ))
            .bind(row.version)
            .bind(&row.sealed)
            .bind(row.updated_at)
            .bind(&row.repository)
            .bind(expected_version)
            .execute(pool)
            .await?;
            Ok(done.rows_affected() == 1)
        })
    }

    /// Records a node's heartbeat (a node is the only writer of its rows, so update-then-insert
    /// needs no upsert syntax).
    pub async fn heartbeat(&self, node: &NodeRow) -> Result<()> {
        dispatch!(self, write, |pool, q| {
            let done = sqlx::query(&q(
                "UPDATE baton_node SET name = ?, address = ?, started_at = ?, heartbeat_at = ?, \
                 key_set_version = ?, key_fingerprints = ?, primary_key_id = ?, change_lag_ms = ? \
                 WHERE node_id = ? AND repository = ?",
            ))
            .bind(&node.name)
            .bind(&node.address)
            .bind(node.started_at)
            .bind(node.heartbeat_at)
            .bind(node.key_set_version)
            .bind(&node.key_fingerprints)
            .bind(node.primary_key_id)
            .bind(node.change_lag_ms)
            .bind(&node.node_id)
            .bind(&node.repository)
            .execute(pool)
            .await?;
            if done.rows_affected() == 0 {
                sqlx::query(&q(
                    "INSERT INTO baton_node (node_id, repository, name, address, started_at, \
                     heartbeat_at, key_set_version, key_fingerprints, primary_key_id, change_lag_ms) \
                     VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                ))
                .bind(&node.node_id)
                .bind(&node.repository)
                .bind(&node.name)
                .bind(&node.address)
                .bind(node.started_at)
                .bind(node.heartbeat_at)
                .bind(node.key_set_version)
                .bind(&node.key_fingerprints)
                .bind(node.primary_key_id)
                .bind(node.change_lag_ms)
                .execute(pool)
                .await?;
            }
            Ok(())
        })
    }

    /// Every node's heartbeat rows, by node then repository.
    pub async fn list_nodes(&self) -> Result<Vec<NodeRow>> {
        dispatch!(self, read, |pool, q| {
            let rows = sqlx::query(&q(
                "SELECT node_id, repository, name, address, started_at, heartbeat_at, \
                 key_set_version, key_fingerprints, primary_key_id, change_lag_ms FROM baton_node \
                 ORDER BY node_id, repository",
            ))
            .fetch_all(pool)
            .await?;
            let mut out = Vec::with_capacity(rows.len());
            for row in rows {
                out.push(NodeRow {
                    node_id: row.try_get("node_id")?,
                    repository: row.try_get("repository")?,
                    name: row.try_get("name")?,
                    address: row.try_get("address")?,
                    started_at: row.try_get("started_at")?,
                    heartbeat_at: row.try_get("heartbeat_at")?,
                    key_set_version: row.try_get("key_set_version")?,
                    key_fingerprints: row.try_get("key_fingerprints")?,
                    primary_key_id: row.try_get("primary_key_id")?,
                    change_lag_ms: row.try_get("change_lag_ms")?,
                });
            }
            Ok(out)
        })
    }

    /// Forgets nodes silent since before `before` (Unix seconds); how many rows went.
    pub async fn prune_nodes(&self, before: i64) -> Result<u64> {
        dispatch!(self, write, |pool, q| {
            let done = sqlx::query(&q("DELETE FROM baton_node WHERE heartbeat_at < ?"))
                .bind(before)
                .execute(pool)
                .await?;
            Ok(done.rows_affected())
        })
    }
}
