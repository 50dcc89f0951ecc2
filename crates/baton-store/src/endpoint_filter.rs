//! Endpoint filtering (`OS-EP-FILTER`): endpoint groups (`endpoint_group`, filters as JSON
//! text), endpoints associated with a project (`project_endpoint`) and endpoint groups associated
//! with a project (`project_endpoint_group`), in Keystone's tables.

use serde_json::{Map, Value};

use crate::{dispatch, Result, Store, StoreError};

/// An endpoint group: the endpoints whose attributes equal its filters.
#[derive(Debug, Clone, PartialEq)]
pub struct EndpointGroup {
    /// Its id.
    pub id: String,
    /// Its name.
    pub name: String,
    /// Free text.
    pub description: Option<String>,
    /// `service_id`, `region_id` and/or `interface`, each with the value to match.
    pub filters: Map<String, Value>,
}

/// Every association of endpoint filtering, for the catalog snapshot.
#[derive(Debug, Clone, Default)]
pub struct EndpointFilterRows {
    /// `(project_id, endpoint_id)` pairs.
    pub project_endpoints: Vec<(String, String)>,
    /// `(project_id, endpoint_group_id)` pairs.
    pub project_groups: Vec<(String, String)>,
    /// Every endpoint group.
    pub groups: Vec<EndpointGroup>,
}

const GROUP_COLUMNS: &str = "SELECT id, name, description, filters FROM endpoint_group";

macro_rules! group_row {
    ($row:expr) => {{
        let filters: String = $row.try_get("filters")?;
        EndpointGroup {
            id: $row.try_get("id")?,
            name: $row.try_get("name")?,
            description: $row.try_get("description")?,
            filters: match serde_json::from_str::<Value>(&filters) {
                Ok(Value::Object(m)) => m,
                _ => Map::new(),
            },
        }
    }};
}

fn group_not_found(id: &str) -> StoreError {
    StoreError::NotFound {
        kind: "endpoint group",
        id: id.to_string(),
    }
}

/// Runs `$sql` with two binds and gives the pairs of its two text columns.
macro_rules! pairs {
    ($pool:expr, $q:expr, $sql:expr) => {{
        let rows = sqlx::query(&$q($sql)).fetch_all($pool).await?;
        let mut out = Vec::with_capacity(rows.len());
        for row in rows {
            out.push((row.try_get::<String, _>(0)?, row.try_get::<String, _>(1)?));
        }
        out
    }};
}

impl Store {
    /// Every endpoint group.
    pub async fn list_endpoint_groups(&self) -> Result<Vec<EndpointGroup>> {
        dispatch!(self, read, |pool, q| {
            let rows = sqlx::query(&q(GROUP_COLUMNS)).fetch_all(pool).await?;
            let mut out = Vec::with_capacity(rows.len());
            for row in rows {
                out.push(group_row!(row));
            }
            Ok(out)
        })
    }

    /// An endpoint group by id; `NotFound` (kind `endpoint group`) when there is none.
    pub async fn get_endpoint_group(&self, id: &str) -> Result<EndpointGroup> {
        dispatch!(self, read, |pool, q| {
            let sql = format!("{GROUP_COLUMNS} WHERE id = ?");
            let row = sqlx::query(&q(&sql))
                .bind(id)
                .fetch_optional(pool)
                .await?
                .ok_or_else(|| group_not_found(id))?;
            Ok(group_row!(row))
        })
    }

    /// Creates an endpoint group, or writes all of an existing one's attributes.
    pub async fn put_endpoint_group(&self, g: &EndpointGroup, creating: bool) -> Result<()> {
        let filters = Value::Object(g.filters.clone()).to_string();
        dispatch!(self, write, |pool, q| {
            let sql = if creating {
                "INSERT INTO endpoint_group (name, description, filters, id) VALUES (?, ?, ?, ?)"
            } else {
                "UPDATE endpoint_group SET name = ?, description = ?, filters = ? WHERE id = ?"
            };
            let done = sqlx::query(&q(sql))
                .bind(&g.name)
                .bind(&g.description)
                .bind(&filters)
                .bind(&g.id)
                .execute(pool)
                .await?;
            // MySQL counts changed rows only: an update that changes nothing is still a hit.
            if done.rows_affected() == 0 {
                self.get_endpoint_group(&g.id).await?;
            }
            Ok(())
        })
    }

    /// Deletes an endpoint group with its project associations.
    pub async fn delete_endpoint_group(&self, id: &str) -> Result<()> {
        dispatch!(self, write, |pool, q| {
            let mut tx = crate::begin_write!(pool);
            sqlx::query(&q(
                "DELETE FROM project_endpoint_group WHERE endpoint_group_id = ?",
            ))
            .bind(id)
            .execute(&mut *tx)
            .await?;
            let done = sqlx::query(&q("DELETE FROM endpoint_group WHERE id = ?"))
                .bind(id)
                .execute(&mut *tx)
                .await?;
            if done.rows_affected() == 0 {
                return Err(group_not_found(id));
            }
            tx.commit().await?;
            Ok(())
        })
    }

    /// Adds an association row (`project_endpoint` with an endpoint id, or
    /// `project_endpoint_group` with a group id); `Conflict` when it exists.
    pub async fn add_project_association(
        &self,
        to_group: bool,
        target_id: &str,
        project_id: &str,
    ) -> Result<()> {
        let (table, column, kind) = association(to_group);
        dispatch!(self, write, |pool, q| {
            let mut tx = crate::begin_write!(pool);
            let sql =
                format!("SELECT project_id FROM {table} WHERE {column} = ? AND project_id = ?");
            let taken = sqlx::query(&q(&sql))
                .bind(target_id)
                .bind(project_id)
                .fetch_optional(&mut *tx)
                .await?;
            if taken.is_some() {
                return Err(StoreError::Conflict(format!("{kind} - Duplicate entry.")));
            }
            let sql = format!("INSERT INTO {table} ({column}, project_id) VALUES (?, ?)");
            sqlx::query(&q(&sql))
                .bind(target_id)
                .bind(project_id)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            Ok(())
        })
    }

    /// Whether an association row exists.
    pub async fn has_project_association(
        &self,
        to_group: bool,
        target_id: &str,
        project_id: &str,
    ) -> Result<bool> {
        let (table, column, _) = association(to_group);
        dispatch!(self, read, |pool, q| {
            let sql =
                format!("SELECT project_id FROM {table} WHERE {column} = ? AND project_id = ?");
            Ok(sqlx::query(&q(&sql))
                .bind(target_id)
                .bind(project_id)
                .fetch_optional(pool)
                .await?
                .is_some())
        })
    }

    /// Deletes an association row; whether there was one.
    pub async fn remove_project_association(
        &self,
        to_group: bool,
        target_id: &str,
        project_id: &str,
    ) -> Result<bool> {
        let (table, column, _) = association(to_group);
        dispatch!(self, write, |pool, q| {
            let sql = format!("DELETE FROM {table} WHERE {column} = ? AND project_id = ?");
            Ok(sqlx::query(&q(&sql))
                .bind(target_id)
                .bind(project_id)
                .execute(pool)
                .await?
                .rows_affected()
                > 0)
        })
    }

    /// Every association row and endpoint group, for the catalog snapshot and the listings.
    pub async fn endpoint_filter_rows(&self) -> Result<EndpointFilterRows> {
        let groups = self.list_endpoint_groups().await?;
        dispatch!(self, read, |pool, q| {
            let project_endpoints = pairs!(
                pool,
                q,
                "SELECT project_id, endpoint_id FROM project_endpoint ORDER BY project_id, endpoint_id"
            );
            let project_groups = pairs!(
                pool,
                q,
                "SELECT project_id, endpoint_group_id FROM project_endpoint_group \
                 ORDER BY project_id, endpoint_group_id"
            );
            Ok(EndpointFilterRows {
                project_endpoints,
                project_groups,
                groups,
            })
        })
    }
}

/// `(table, column, conflict type)` of an association.
fn association(to_group: bool) -> (&'static str, &'static str, &'static str) {
    if to_group {
        (
            "project_endpoint_group",
            "endpoint_group_id",
            "project_endpoint_group",
        )
    } else {
        ("project_endpoint", "endpoint_id", "project_endpoint")
    }
}
