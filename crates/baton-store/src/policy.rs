//! Policy blobs (`policy`: an opaque document a service may fetch, with its `type`) and endpoint
//! policy (`policy_association`: which policy an endpoint, a service, or a service in a region
//! uses), in Keystone's tables.
//!
//! Keystone stores `blob` and `extra` as JSON text (`"..."` for the blob string), so rows written
//! by either implementation read the same in the other. Listings keep the database's own order,
//! as Keystone's queries do.

use serde_json::{Map, Value};

use crate::{dispatch, Result, Store, StoreError};

/// A policy blob.
#[derive(Debug, Clone, PartialEq)]
pub struct Policy {
    /// Its id.
    pub id: String,
    /// The MIME type of the blob, as the creator said.
    pub policy_type: String,
    /// The document (a string as created through the API; any JSON value a row holds).
    pub blob: Value,
    /// Attributes the client set beyond `blob` and `type`.
    pub extra: Map<String, Value>,
}

/// One endpoint-policy association: exactly one of an endpoint, a service, or a service with a
/// region (Keystone's three kinds).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyAssociation {
    /// The policy used.
    pub policy_id: String,
    /// The endpoint, for an endpoint association.
    pub endpoint_id: Option<String>,
    /// The service, for a service or service-and-region association.
    pub service_id: Option<String>,
    /// The region, for a service-and-region association.
    pub region_id: Option<String>,
}

// `blob` is a reserved word in MySQL: quoted, as every dialect accepts.
const POLICY_COLUMNS: &str = r#"SELECT id, "type", "blob", extra FROM policy"#;

macro_rules! policy_row {
    ($row:expr) => {{
        let blob: String = $row.try_get("blob")?;
        let extra: Option<String> = $row.try_get("extra")?;
        Policy {
            id: $row.try_get("id")?,
            policy_type: $row.try_get("type")?,
            // A blob that is not JSON text was not written by Keystone; it is served as it is.
            blob: serde_json::from_str(&blob).unwrap_or(Value::String(blob)),
            extra: match extra.as_deref().map(serde_json::from_str::<Value>) {
                Some(Ok(Value::Object(m))) => m,
                _ => Map::new(),
            },
        }
    }};
}

fn policy_not_found(id: &str) -> StoreError {
    StoreError::NotFound {
        kind: "policy",
        id: id.to_string(),
    }
}

/// `col = ?` for a value, `col IS NULL` for none: the association's three columns compared as
/// Keystone's query compares them.
fn column_is(column: &str, v: Option<&str>) -> String {
    if v.is_some() {
        format!("{column} = ?")
    } else {
        format!("{column} IS NULL")
    }
}

/// The `WHERE` clause naming an association's endpoint, service and region, and its binds.
fn association_where(a: &PolicyAssociation) -> (String, Vec<String>) {
    let cols = [
        ("endpoint_id", a.endpoint_id.as_deref()),
        ("service_id", a.service_id.as_deref()),
        ("region_id", a.region_id.as_deref()),
    ];
    let clause = cols
        .iter()
        .map(|(c, v)| column_is(c, *v))
        .collect::<Vec<_>>()
        .join(" AND ");
    let binds = cols
        .iter()
        .filter_map(|(_, v)| v.map(str::to_string))
        .collect();
    (clause, binds)
}

impl Store {
    /// Every policy blob.
    pub async fn list_policies(&self) -> Result<Vec<Policy>> {
        dispatch!(self, read, |pool, q| {
            let rows = sqlx::query(&q(POLICY_COLUMNS)).fetch_all(pool).await?;
            let mut out = Vec::with_capacity(rows.len());
            for row in rows {
                out.push(policy_row!(row));
            }
            Ok(out)
        })
    }

    /// A policy by id; `NotFound` (kind `policy`) when there is none.
    pub async fn get_policy(&self, id: &str) -> Result<Policy> {
        dispatch!(self, read, |pool, q| {
            let sql = format!("{POLICY_COLUMNS} WHERE id = ?");
            let row = sqlx::query(&q(&sql))
                .bind(id)
                .fetch_optional(pool)
                .await?
                .ok_or_else(|| policy_not_found(id))?;
            Ok(policy_row!(row))
        })
    }

    /// Creates a policy, or writes all of an existing one's attributes.
    pub async fn put_policy(&self, p: &Policy, creating: bool) -> Result<()> {
        let blob = p.blob.to_string();
        let extra = Value::Object(p.extra.clone()).to_string();
        dispatch!(self, write, |pool, q| {
            let sql = if creating {
                r#"INSERT INTO policy ("type", "blob", extra, id) VALUES (?, ?, ?, ?)"#
            } else {
                r#"UPDATE policy SET "type" = ?, "blob" = ?, extra = ? WHERE id = ?"#
            };
            let done = sqlx::query(&q(sql))
                .bind(&p.policy_type)
                .bind(&blob)
                .bind(&extra)
                .bind(&p.id)
                .execute(pool)
                .await?;
            // MySQL counts changed rows only: an update that changes nothing is still a hit.
            if done.rows_affected() == 0 {
                self.get_policy(&p.id).await?;
            }
            Ok(())
        })
    }

    /// Deletes a policy. Its endpoint associations stay, as in Keystone (they then name a
    /// policy that is gone, which the endpoint lookup answers with 404).
    pub async fn delete_policy(&self, id: &str) -> Result<()> {
        dispatch!(self, write, |pool, q| {
            let done = sqlx::query(&q("DELETE FROM policy WHERE id = ?"))
                .bind(id)
                .execute(pool)
                .await?;
            if done.rows_affected() == 0 {
                return Err(policy_not_found(id));
            }
            Ok(())
        })
    }

    /// Points an endpoint, service, or service and region at a policy: the existing row for
    /// that target gets the new policy, else a row is added (one policy per target).
    pub async fn set_policy_association(&self, a: &PolicyAssociation) -> Result<()> {
        let (clause, binds) = association_where(a);
        dispatch!(self, write, |pool, q| {
            let mut tx = crate::begin_write!(pool);
            let sql = q(&format!(
                "UPDATE policy_association SET policy_id = ? WHERE {clause}"
            ))
            .into_owned();
            let mut update = sqlx::query(&sql).bind(&a.policy_id);
            for b in &binds {
                update = update.bind(b);
            }
            update.execute(&mut *tx).await?;
            let sql = q(&format!("SELECT id FROM policy_association WHERE {clause}")).into_owned();
            let mut exists = sqlx::query(&sql);
            for b in &binds {
                exists = exists.bind(b);
            }
            if exists.fetch_optional(&mut *tx).await?.is_none() {
                sqlx::query(&q(
                    "INSERT INTO policy_association (id, policy_id, endpoint_id, service_id, region_id) VALUES (?, ?, ?, ?, ?)",
                ))
                .bind(crate::new_id())
                .bind(&a.policy_id)
                .bind(&a.endpoint_id)
                .bind(&a.service_id)
                .bind(&a.region_id)
                .execute(&mut *tx)
                .await?;
            }
            tx.commit().await?;
            Ok(())
        })
    }

    /// Whether this exact association (policy and target) exists.
    pub async fn has_policy_association(&self, a: &PolicyAssociation) -> Result<bool> {
        let (clause, binds) = association_where(a);
        dispatch!(self, read, |pool, q| {
            let sql = q(&format!(
                "SELECT id FROM policy_association WHERE policy_id = ? AND {clause}"
            ))
            .into_owned();
            let mut query = sqlx::query(&sql).bind(&a.policy_id);
            for b in &binds {
                query = query.bind(b);
            }
            Ok(query.fetch_optional(pool).await?.is_some())
        })
    }

    /// Deletes this exact association if it exists (Keystone answers 204 either way).
    pub async fn delete_policy_association(&self, a: &PolicyAssociation) -> Result<()> {
        let (clause, binds) = association_where(a);
        dispatch!(self, write, |pool, q| {
            let sql = q(&format!(
                "DELETE FROM policy_association WHERE policy_id = ? AND {clause}"
            ))
            .into_owned();
            let mut query = sqlx::query(&sql).bind(&a.policy_id);
            for b in &binds {
                query = query.bind(b);
            }
            query.execute(pool).await?;
            Ok(())
        })
    }

    /// The policy a target (endpoint, service, or service and region) is associated with.
    pub async fn policy_of(&self, target: &PolicyAssociation) -> Result<Option<String>> {
        let (clause, binds) = association_where(target);
        dispatch!(self, read, |pool, q| {
            let sql = q(&format!(
                "SELECT policy_id FROM policy_association WHERE {clause}"
            ))
            .into_owned();
            let mut query = sqlx::query(&sql);
            for b in &binds {
                query = query.bind(b);
            }
            match query.fetch_optional(pool).await? {
                Some(row) => Ok(Some(row.try_get::<String, _>(0)?)),
                None => Ok(None),
            }
        })
    }

    /// A policy's associations, in the database's order.
    pub async fn policy_associations(&self, policy_id: &str) -> Result<Vec<PolicyAssociation>> {
        dispatch!(self, read, |pool, q| {
            let rows = sqlx::query(&q(
                "SELECT policy_id, endpoint_id, service_id, region_id FROM policy_association WHERE policy_id = ?",
            ))
            .bind(policy_id)
            .fetch_all(pool)
            .await?;
            let mut out = Vec::with_capacity(rows.len());
            for row in rows {
                out.push(PolicyAssociation {
                    policy_id: row.try_get(0)?,
                    endpoint_id: row.try_get(1)?,
                    service_id: row.try_get(2)?,
                    region_id: row.try_get(3)?,
                });
            }
            Ok(out)
        })
    }
}
