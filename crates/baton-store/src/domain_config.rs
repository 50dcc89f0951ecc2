//! A domain's own configuration (`/v3/domains/{id}/config`) in Keystone's tables:
//! `whitelisted_config` for the options the API shows, `sensitive_config` for those it never
//! shows (`[ldap] password`). Values are JSON text, as Keystone stores them. Which options go
//! where is decided above (`identity/domain_config.rs`); rows come back in the database's order,
//! as Keystone's queries return them.

use serde_json::Value;

use crate::{dispatch, Result, Store};

/// One option of a domain's configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct DomainConfigOption {
    /// Its group (`identity`, `ldap`).
    pub group: String,
    /// Its name within the group.
    pub option: String,
    /// Its value, any JSON.
    pub value: Value,
    /// Kept in `sensitive_config` (never shown) rather than `whitelisted_config`.
    pub sensitive: bool,
}

fn table(sensitive: bool) -> &'static str {
    if sensitive {
        "sensitive_config"
    } else {
        "whitelisted_config"
    }
}

/// `WHERE domain_id = ?` narrowed to a group and an option when given; `group`, `option` and
/// `value` are reserved words in MySQL, hence quoted.
fn narrowed(group: Option<&str>, option: Option<&str>) -> String {
    let mut clause = String::from("domain_id = ?");
    if group.is_some() {
        clause.push_str(" AND \"group\" = ?");
        if option.is_some() {
            clause.push_str(" AND \"option\" = ?");
        }
    }
    clause
}

impl Store {
    /// The options of a domain's configuration in one table (`sensitive` picks it), narrowed to a
    /// group, and an option within it, when given.
    pub async fn domain_config_options(
        &self,
        domain_id: &str,
        group: Option<&str>,
        option: Option<&str>,
        sensitive: bool,
    ) -> Result<Vec<DomainConfigOption>> {
        let sql = format!(
            "SELECT \"group\", \"option\", \"value\" FROM {} WHERE {}",
            table(sensitive),
            narrowed(group, option)
        );
        dispatch!(self, read, |pool, q| {
            let sql = q(&sql).into_owned();
            let mut query = sqlx::query(&sql).bind(domain_id);
            if let Some(g) = group {
                query = query.bind(g);
                if let Some(o) = option {
                    query = query.bind(o);
                }
            }
            let rows = query.fetch_all(pool).await?;
            let mut out = Vec::with_capacity(rows.len());
            for row in rows {
                let text: String = row.try_get(2)?;
                out.push(DomainConfigOption {
                    group: row.try_get(0)?,
                    option: row.try_get(1)?,
                    // A value that is not JSON text was not written by Keystone: served as text.
                    value: serde_json::from_str(&text).unwrap_or(Value::String(text)),
                    sensitive,
                });
            }
            Ok(out)
        })
    }

    /// Writes options of a domain's configuration in one transaction. With `replace_all` every
    /// option the domain had goes first (Keystone's create); otherwise each given option replaces
    /// its earlier value in either table (Keystone's update).
    pub async fn write_domain_config(
        &self,
        domain_id: &str,
        options: &[DomainConfigOption],
        replace_all: bool,
    ) -> Result<()> {
        dispatch!(self, write, |pool, q| {
            let mut tx = crate::begin_write!(pool);
            for sensitive in [false, true] {
                if replace_all {
                    let sql = format!("DELETE FROM {} WHERE domain_id = ?", table(sensitive));
                    sqlx::query(&q(&sql))
                        .bind(domain_id)
                        .execute(&mut *tx)
                        .await?;
                    continue;
                }
                let sql = format!(
                    "DELETE FROM {} WHERE domain_id = ? AND \"group\" = ? AND \"option\" = ?",
                    table(sensitive)
                );
                for o in options {
                    sqlx::query(&q(&sql))
                        .bind(domain_id)
                        .bind(&o.group)
                        .bind(&o.option)
                        .execute(&mut *tx)
                        .await?;
                }
            }
            for o in options {
                let sql = format!(
                    "INSERT INTO {} (domain_id, \"group\", \"option\", \"value\") VALUES (?, ?, ?, ?)",
                    table(o.sensitive)
                );
                sqlx::query(&q(&sql))
                    .bind(domain_id)
                    .bind(&o.group)
                    .bind(&o.option)
                    .bind(o.value.to_string())
                    .execute(&mut *tx)
                    .await?;
            }
            tx.commit().await?;
            Ok(())
        })
    }

    /// Deletes a domain's configuration, or one group of it, or one option, from both tables.
    pub async fn delete_domain_config(
        &self,
        domain_id: &str,
        group: Option<&str>,
        option: Option<&str>,
    ) -> Result<()> {
        let clause = narrowed(group, option);
        dispatch!(self, write, |pool, q| {
            let mut tx = crate::begin_write!(pool);
            for sensitive in [false, true] {
                let sql =
                    q(&format!("DELETE FROM {} WHERE {clause}", table(sensitive))).into_owned();
                let mut query = sqlx::query(&sql).bind(domain_id);
                if let Some(g) = group {
                    query = query.bind(g);
                    if let Some(o) = option {
                        query = query.bind(o);
                    }
                }
                query.execute(&mut *tx).await?;
            }
            tx.commit().await?;
            Ok(())
        })
    }
}
