//! How the database would run one of Baton's statements: which tables (or index orders) it
//! reads in full. Used by the tests that hold every hot path to its indexes on all three
//! backends, and available to operators checking a database Keystone created.
//!
//! Each backend is asked so that the answer does not depend on how much data the test made:
//! SQLite's plan does not; PostgreSQL plans the generic statement (`force_generic_plan`) with
//! sequential scans disabled, so a `Seq Scan` left means no index could serve; MariaDB is told
//! that no index lookup costs more than one seek (`max_seeks_for_key = 1`), so an `ALL` left
//! means the same.

use crate::{Backend, Result, Store};

/// One table access of a plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlanStep {
    /// The table, or its alias when the statement gave one.
    pub table: String,
    /// Whether every row of the table (or of one of its indexes) is read.
    pub full_scan: bool,
    /// The backend's own words for the step.
    pub detail: String,
}

impl Store {
    /// The table accesses of `sql`, written as Baton runs it (`?` placeholders on SQLite and
    /// MariaDB, `$n` on PostgreSQL). Nothing is executed.
    pub async fn explain(&self, sql: &str) -> Result<Vec<PlanStep>> {
        use sqlx::{Connection as _, Row as _};
        match &self.backend {
            Backend::Sqlite { read, .. } => {
                let rows = sqlx::query(&format!("EXPLAIN QUERY PLAN {sql}"))
                    .fetch_all(read)
                    .await?;
                let mut out = Vec::new();
                for row in rows {
                    let detail: String = row.try_get("detail")?;
                    if let Some(step) = sqlite_step(&detail) {
                        out.push(step);
                    }
                }
                Ok(out)
            }
            Backend::Postgres(pool) => {
                // A connection of its own: the session settings and the prepared statement
                // never reach the pool, whatever fails half way.
                let mut c = sqlx::PgConnection::connect_with(&pool.connect_options()).await?;
                let params = (1..=max_dollar_param(sql))
                    .map(|_| "NULL")
                    .collect::<Vec<_>>()
                    .join(", ");
                let mut tx = c.begin().await?;
                for set in [
                    "SET LOCAL plan_cache_mode = force_generic_plan",
                    "SET LOCAL enable_seqscan = off",
                ] {
                    sqlx::query(set).execute(&mut *tx).await?;
                }
                sqlx::query(&format!("PREPARE baton_explain AS {sql}"))
                    .execute(&mut *tx)
                    .await?;
                let execute = if params.is_empty() {
                    "EXPLAIN EXECUTE baton_explain".to_string()
                } else {
                    format!("EXPLAIN EXECUTE baton_explain({params})")
                };
                let rows = sqlx::query(&execute).fetch_all(&mut *tx).await?;
                sqlx::query("DEALLOCATE baton_explain")
                    .execute(&mut *tx)
                    .await?;
                tx.rollback().await?;
                let lines = rows
                    .iter()
                    .map(|r| r.try_get::<String, _>(0))
                    .collect::<std::result::Result<Vec<_>, _>>()?;
                Ok(postgres_steps(&lines))
            }
            Backend::MySql(pool) => {
                let mut c = sqlx::MySqlConnection::connect_with(&pool.connect_options()).await?;
                sqlx::query("SET SESSION max_seeks_for_key = 1")
                    .execute(&mut c)
                    .await?;
                // Placeholders become a literal: EXPLAIN plans it as it would a bound value.
                let literal = sql.replace('?', "'x'");
                let rows = sqlx::raw_sql(&format!("EXPLAIN {literal}"))
                    .fetch_all(&mut c)
                    .await?;
                let mut out = Vec::new();
                for row in rows {
                    let table: Option<String> = row.try_get("table")?;
                    let kind: Option<String> = row.try_get("type")?;
                    let extra: Option<String> = row.try_get("Extra")?;
                    let Some(table) = table else { continue };
                    let kind = kind.unwrap_or_default();
                    out.push(PlanStep {
                        full_scan: kind == "ALL" || kind == "index",
                        detail: format!("{table}: type {kind}; {}", extra.unwrap_or_default()),
                        table,
                    });
                }
                Ok(out)
            }
        }
    }
}

/// `SCAN t` (a whole table or a whole index) or `SEARCH t USING ...` (an index lookup).
fn sqlite_step(detail: &str) -> Option<PlanStep> {
    let (full_scan, rest) = if let Some(rest) = detail.strip_prefix("SCAN ") {
        (true, rest)
    } else if let Some(rest) = detail.strip_prefix("SEARCH ") {
        (false, rest)
    } else {
        return None;
    };
    let table = rest.split_whitespace().next()?.to_string();
    // `SCAN CONSTANT ROW` and scans of a subquery's result read no table.
    if table == "CONSTANT" || table.starts_with('(') {
        return None;
    }
    Some(PlanStep {
        table,
        full_scan,
        detail: detail.to_string(),
    })
}

/// The highest `$n` in `sql`.
fn max_dollar_param(sql: &str) -> usize {
    let mut max = 0;
    let mut rest = sql;
    while let Some(at) = rest.find('$') {
        rest = &rest[at + 1..];
        let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
        if let Ok(n) = digits.parse::<usize>() {
            max = max.max(n);
        }
    }
    max
}

/// Table accesses of PostgreSQL's text plan: `Seq Scan on t a`, and index scans without an
/// `Index Cond` (a walk of the whole index).
fn postgres_steps(lines: &[String]) -> Vec<PlanStep> {
    let mut out = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        let node = line.trim_start().trim_start_matches("->").trim_start();
        let (full, on) = if let Some(rest) = node.strip_prefix("Seq Scan on ") {
            (true, rest)
        } else if let Some(rest) = node
            .strip_prefix("Index Scan using ")
            .or_else(|| node.strip_prefix("Index Only Scan using "))
            .or_else(|| node.strip_prefix("Index Scan Backward using "))
        {
            let Some((_, on)) = rest.split_once(" on ") else {
                continue;
            };
            // The node's own detail lines run until the next node (`->`).
            let cond = lines[i + 1..]
                .iter()
                .take_while(|l| !l.contains("->"))
                .any(|l| l.contains("Index Cond:"));
            (!cond, on)
        } else {
            continue;
        };
        let on = on.split("  (").next().unwrap_or(on);
        let mut words = on.split_whitespace().map(|w| w.trim_matches('"'));
        let table = words.next().unwrap_or_default();
        let alias = words.next();
        out.push(PlanStep {
            table: alias.unwrap_or(table).to_string(),
            full_scan: full,
            detail: node.to_string(),
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plans_are_read_as_scans_and_lookups() {
        assert_eq!(sqlite_step("SCAN lu").map(|s| s.full_scan), Some(true));
        let s = sqlite_step("SEARCH u USING COVERING INDEX sqlite_autoindex_user_1 (id=?)")
            .expect("step");
        assert_eq!((s.table.as_str(), s.full_scan), ("u", false));
        assert!(sqlite_step("SCAN CONSTANT ROW").is_none());
        assert_eq!(max_dollar_param("a = $1 AND b IN ($2, $10)"), 10);
        let plan: Vec<String> = [
            "Nested Loop  (cost=0.1..1 rows=1 width=1)",
            "  ->  Index Scan using user_pkey on \"user\" u  (cost=0.1..1 rows=1 width=1)",
            "        Index Cond: ((id)::text = $1)",
            "  ->  Index Scan using project_pkey on project  (cost=0.1..1 rows=1 width=1)",
            "        Filter: (x = $2)",
            "  ->  Seq Scan on assignment  (cost=1.00..2 rows=1 width=1)",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let steps = postgres_steps(&plan);
        let got: Vec<(&str, bool)> = steps
            .iter()
            .map(|s| (s.table.as_str(), s.full_scan))
            .collect();
        assert_eq!(
            got,
            vec![("u", false), ("project", true), ("assignment", true)]
        );
    }
}
