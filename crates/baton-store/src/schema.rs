//! `db_sync`: bring an empty database to Keystone's schema at its alembic heads, and recognise a
//! database that Keystone (or an earlier Baton) already brought there.

use crate::{dispatch, Dialect, Result, Store, StoreError};

/// Keystone's alembic heads (expand and contract branches) that the bundled schema matches.
pub const ALEMBIC_HEADS: [&str; 2] = ["742c857f1dfb", "c88cdce8f248"];

const SQLITE_SCHEMA: &str = include_str!("../schema/sqlite.sql");
const POSTGRES_SCHEMA: &str = include_str!("../schema/postgres.sql");
const MYSQL_SCHEMA: &str = include_str!("../schema/mysql.sql");

/// What `db_sync` did to the schema.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SyncOutcome {
    /// The schema was created and stamped with Keystone's heads.
    Created,
    /// The database was already at the heads; nothing changed.
    AlreadyCurrent,
}

impl Store {
    /// Creates Keystone's schema in an empty database. Safe to re-run and to run from several
    /// processes at once: the work happens under a database lock and a current database is left
    /// untouched. A database at other alembic revisions is refused with a clear message.
    pub async fn db_sync(&self) -> Result<SyncOutcome> {
        let outcome = self.sync_keystone_schema().await?;
        // Baton's own tables, outside Keystone's migrations (change feed, shared keys).
        self.ensure_baton_tables().await?;
        Ok(outcome)
    }

    async fn sync_keystone_schema(&self) -> Result<SyncOutcome> {
        let schema = match self.dialect() {
            Dialect::Sqlite => SQLITE_SCHEMA,
            Dialect::Postgres => POSTGRES_SCHEMA,
            Dialect::MySql => MYSQL_SCHEMA,
        };
        let statements = split_statements(schema);
        let outcome = dispatch!(self, write, |pool, q| {
            // MySQL commits DDL implicitly and has no transaction-scoped lock: a named lock on a
            // connection of its own serialises concurrent runs, and is released only after the
            // commit, so the next run sees everything this one wrote.
            let mut lock = crate::NamedLock::named_lock(pool, "baton_db_sync").await?;
            let mut tx = crate::begin_write!(pool);
            match self.dialect() {
                Dialect::Postgres => {
                    sqlx::query("SELECT pg_advisory_xact_lock(7135208)")
                        .execute(&mut *tx)
                        .await?;
                }
                // MySQL: the named lock taken before the transaction (below).
                Dialect::MySql => {}
                Dialect::Sqlite => {}
            }
            let probe = match self.dialect() {
                Dialect::Sqlite => "SELECT name FROM sqlite_master WHERE type = 'table' AND name = 'alembic_version'",
                Dialect::Postgres => "SELECT table_name FROM information_schema.tables WHERE table_name = 'alembic_version' AND table_schema = current_schema()",
                Dialect::MySql => "SELECT table_name FROM information_schema.tables WHERE table_name = 'alembic_version' AND table_schema = DATABASE()",
            };
            let has_alembic = sqlx::query(probe).fetch_optional(&mut *tx).await?.is_some();
            let outcome = if has_alembic {
                let rows = sqlx::query("SELECT version_num FROM alembic_version")
                    .fetch_all(&mut *tx)
                    .await?;
                let mut versions: Vec<String> = rows
                    .iter()
                    .map(|r| r.try_get::<String, _>(0))
                    .collect::<std::result::Result<_, _>>()?;
                versions.sort();
                let mut heads: Vec<String> = ALEMBIC_HEADS.iter().map(|s| s.to_string()).collect();
                heads.sort();
                if versions != heads {
                    return Err(StoreError::Schema(format!(
                        "database {} is at Keystone schema revision(s) {:?}, Baton serves {:?}: \
                         run `keystone-manage db_sync` with a Keystone of that release first",
                        self.redacted_url(),
                        versions,
                        heads
                    )));
                }
                SyncOutcome::AlreadyCurrent
            } else {
                for stmt in &statements {
                    sqlx::query(&q(stmt)).execute(&mut *tx).await.map_err(|e| {
                        StoreError::Schema(format!(
                            "creating the schema failed at `{}`: {e}",
                            first_line(stmt)
                        ))
                    })?;
                }
                for head in ALEMBIC_HEADS {
                    sqlx::query(&q("INSERT INTO alembic_version (version_num) VALUES (?)"))
                        .bind(head)
                        .execute(&mut *tx)
                        .await?;
                }
                SyncOutcome::Created
            };
            tx.commit().await?;
            if let Some(conn) = lock.as_mut() {
                sqlx::query("SELECT RELEASE_LOCK('baton_db_sync')")
                    .execute(&mut **conn)
                    .await?;
            }
            Ok::<_, StoreError>(outcome)
        })?;
        Ok(outcome)
    }

    /// True when the database holds Keystone's schema at the heads Baton serves.
    pub async fn schema_is_current(&self) -> Result<bool> {
        let rows: Result<Vec<String>> = async {
            dispatch!(self, read, |pool, q| {
                let rows = sqlx::query(&q("SELECT version_num FROM alembic_version"))
                    .fetch_all(pool)
                    .await?;
                rows.iter()
                    .map(|r| r.try_get::<String, _>(0).map_err(StoreError::from))
                    .collect()
            })
        }
        .await;
        match rows {
            Ok(mut v) => {
                v.sort();
                let mut heads: Vec<String> = ALEMBIC_HEADS.iter().map(|s| s.to_string()).collect();
                heads.sort();
                Ok(v == heads)
            }
            Err(_) => Ok(false),
        }
    }
}

fn first_line(stmt: &str) -> &str {
    stmt.lines()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("")
        .trim()
}

/// Splits a schema script into statements at `;` outside quotes and `--` comments; MySQL's
/// foreign-key switch wraps the script so tables may be created in any order.
pub(crate) fn split_statements(script: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut in_quote = false;
    for line in script.lines() {
        if !in_quote && line.trim_start().starts_with("--") {
            continue;
        }
        for c in line.chars() {
            if c == '\'' {
                in_quote = !in_quote;
            }
            if c == ';' && !in_quote {
                let stmt = cur.trim().to_string();
                if !stmt.is_empty() {
                    out.push(stmt);
                }
                cur.clear();
            } else {
                cur.push(c);
            }
        }
        cur.push('\n');
    }
    let tail = cur.trim();
    if !tail.is_empty() {
        out.push(tail.to_string());
    }
    if script.contains("ENGINE=InnoDB") {
        out.insert(0, "SET FOREIGN_KEY_CHECKS = 0".into());
        out.push("SET FOREIGN_KEY_CHECKS = 1".into());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_dialect_script_creates_the_same_tables() {
        let count = |s: &str| {
            split_statements(s)
                .iter()
                .filter(|s| s.starts_with("CREATE TABLE"))
                .count()
        };
        assert_eq!(count(SQLITE_SCHEMA), 49);
        assert_eq!(count(POSTGRES_SCHEMA), 49);
        assert_eq!(count(MYSQL_SCHEMA), 49);
    }

    #[test]
    fn splitting_respects_quotes_and_comments() {
        let s = split_statements("-- a; comment\nCREATE TABLE a (x TEXT DEFAULT ';');\nSELECT 1;");
        assert_eq!(s, vec!["CREATE TABLE a (x TEXT DEFAULT ';')", "SELECT 1"]);
    }
}
