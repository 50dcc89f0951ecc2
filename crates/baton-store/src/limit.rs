//! Unified limits: registered limits (a service's default for one of its resources, optionally
//! per region) and limits (a project's or a domain's own value for a registered resource), in
//! Keystone's `registered_limit` and `limit` tables.
//!
//! A limit row names its registered limit (`registered_limit_id`); its service, region and
//! resource name are read through it, as Keystone 30 does (the old copies of those columns are
//! gone from the schema). Each write runs in one transaction with the checks that keep the two
//! tables consistent: one registered limit per (service, region, resource), one limit per
//! (registered limit, project or domain), no limit without its registered limit, and no change to
//! a registered limit that limits use.

use crate::{dispatch, int_of, Result, Store, StoreError};

/// A registered limit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegisteredLimit {
    /// Its id.
    pub id: String,
    /// The service whose resource it limits.
    pub service_id: Option<String>,
    /// The region it applies in; `None` for every region.
    pub region_id: Option<String>,
    /// The resource (`cores`, `image_size_total`, ...).
    pub resource_name: Option<String>,
    /// The limit of projects without their own.
    pub default_limit: i64,
    /// Free text.
    pub description: Option<String>,
}

/// A project's or a domain's limit, with what it reads through its registered limit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limit {
    /// Its id.
    pub id: String,
    /// The project it limits (or `None` for a domain's limit).
    pub project_id: Option<String>,
    /// The domain it limits (or `None` for a project's limit).
    pub domain_id: Option<String>,
    /// The value.
    pub resource_limit: i64,
    /// Free text.
    pub description: Option<String>,
    /// The registered limit's service.
    pub service_id: Option<String>,
    /// The registered limit's region.
    pub region_id: Option<String>,
    /// The registered limit's resource.
    pub resource_name: Option<String>,
}

/// A limit to create: it names its registered limit by service, region and resource.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewLimit {
    /// Its new id.
    pub id: String,
    /// The project (exactly one of project and domain is set).
    pub project_id: Option<String>,
    /// The domain.
    pub domain_id: Option<String>,
    /// The registered limit's service.
    pub service_id: String,
    /// The registered limit's region.
    pub region_id: Option<String>,
    /// The registered limit's resource.
    pub resource_name: String,
    /// The value.
    pub resource_limit: i64,
    /// Free text.
    pub description: Option<String>,
}

/// Why a unified-limit write was refused (each a 403 in Keystone).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LimitRefusal {
    /// A limit names a service, region and resource with no registered limit.
    NoRegisteredLimit,
    /// The registered limit is used by limits, so it may be neither changed nor deleted.
    RegisteredLimitInUse,
}

const REGISTERED_COLUMNS: &str = "SELECT id, service_id, region_id, resource_name, default_limit, \
    description FROM registered_limit";

const LIMIT_COLUMNS: &str = "SELECT l.id, l.project_id, l.domain_id, l.resource_limit, \
    l.description, r.service_id, r.region_id, r.resource_name FROM \"limit\" l \
    LEFT JOIN registered_limit r ON r.id = l.registered_limit_id";

macro_rules! registered_row {
    ($row:expr) => {
        RegisteredLimit {
            id: $row.try_get("id")?,
            service_id: $row.try_get("service_id")?,
            region_id: $row.try_get("region_id")?,
            resource_name: $row.try_get("resource_name")?,
            default_limit: int_of!($row, "default_limit"),
            description: $row.try_get("description")?,
        }
    };
}

macro_rules! limit_row {
    ($row:expr) => {
        Limit {
            id: $row.try_get("id")?,
            project_id: $row.try_get("project_id")?,
            domain_id: $row.try_get("domain_id")?,
            resource_limit: int_of!($row, "resource_limit"),
            description: $row.try_get("description")?,
            service_id: $row.try_get("service_id")?,
            region_id: $row.try_get("region_id")?,
            resource_name: $row.try_get("resource_name")?,
        }
    };
}

/// The registered limits of (service, region, resource) other than `except`, region compared
/// as `IS NULL` when absent (as Keystone's filter does).
macro_rules! registered_for {
    ($tx:expr, $q:expr, $service:expr, $region:expr, $resource:expr, $except:expr) => {{
        let region_clause = if $region.is_some() {
            "region_id = ?"
        } else {
            "region_id IS NULL"
        };
        let sql = format!(
            "SELECT id FROM registered_limit WHERE service_id = ? AND resource_name = ? \
             AND {region_clause} AND id <> ?"
        );
        let text = $q(&sql);
        let mut query = sqlx::query_scalar::<_, String>(&text)
            .bind($service)
            .bind($resource);
        if let Some(region) = $region {
            query = query.bind(region);
        }
        query.bind($except).fetch_all(&mut *$tx).await?
    }};
}

/// Whether limits use the registered limit `id`; `NotFound` when there is none.
macro_rules! registered_in_use {
    ($tx:expr, $q:expr, $id:expr) => {{
        sqlx::query(&$q("SELECT id FROM registered_limit WHERE id = ?"))
            .bind($id)
            .fetch_optional(&mut *$tx)
            .await?
            .ok_or_else(|| registered_not_found($id))?;
        sqlx::query(&$q(
            "SELECT id FROM \"limit\" WHERE registered_limit_id = ?",
        ))
        .bind($id)
        .fetch_optional(&mut *$tx)
        .await?
        .is_some()
    }};
}

fn registered_not_found(id: &str) -> StoreError {
    StoreError::NotFound {
        kind: "registered limit",
        id: id.to_string(),
    }
}

fn limit_not_found(id: &str) -> StoreError {
    StoreError::NotFound {
        kind: "limit",
        id: id.to_string(),
    }
}

fn duplicate(kind: &str) -> StoreError {
    StoreError::Conflict(format!("{kind} - Duplicate entry."))
}

impl Store {
    /// Every registered limit, oldest first.
    pub async fn list_registered_limits(&self) -> Result<Vec<RegisteredLimit>> {
        dispatch!(self, read, |pool, q| {
            let sql = format!("{REGISTERED_COLUMNS} ORDER BY internal_id");
            let rows = sqlx::query(&q(&sql)).fetch_all(pool).await?;
            let mut out = Vec::with_capacity(rows.len());
            for row in rows {
                out.push(registered_row!(row));
            }
            Ok(out)
        })
    }

    /// A registered limit by id; `NotFound` (kind `registered limit`) when there is none.
    pub async fn get_registered_limit(&self, id: &str) -> Result<RegisteredLimit> {
        dispatch!(self, read, |pool, q| {
            let sql = format!("{REGISTERED_COLUMNS} WHERE id = ?");
            let row = sqlx::query(&q(&sql))
                .bind(id)
                .fetch_optional(pool)
                .await?
                .ok_or_else(|| registered_not_found(id))?;
            Ok(registered_row!(row))
        })
    }

    /// Creates registered limits, all or none; `Conflict` when one repeats the (service,
    /// region, resource) of a stored one or of an earlier one of the batch.
    pub async fn create_registered_limits(&self, limits: &[RegisteredLimit]) -> Result<()> {
        dispatch!(self, write, |pool, q| {
            let mut tx = crate::begin_write!(pool);
            for r in limits {
                let taken = registered_for!(
                    tx,
                    q,
                    &r.service_id,
                    r.region_id.as_ref(),
                    &r.resource_name,
                    &r.id
                );
                if !taken.is_empty() {
                    return Err(duplicate("registered_limit"));
                }
                sqlx::query(&q(
                    "INSERT INTO registered_limit (id, service_id, region_id, resource_name, \
                     default_limit, description) VALUES (?, ?, ?, ?, ?, ?)",
                ))
                .bind(&r.id)
                .bind(&r.service_id)
                .bind(&r.region_id)
                .bind(&r.resource_name)
                .bind(r.default_limit)
                .bind(&r.description)
                .execute(&mut *tx)
                .await?;
            }
            tx.commit().await?;
            Ok(())
        })
    }

    /// Replaces a registered limit's attributes with `r`'s. Refused while limits use it;
    /// `Conflict` when its new (service, region, resource) is another one's.
    pub async fn update_registered_limit(
        &self,
        r: &RegisteredLimit,
    ) -> Result<Result<(), LimitRefusal>> {
        dispatch!(self, write, |pool, q| {
            let mut tx = crate::begin_write!(pool);
            if registered_in_use!(tx, q, &r.id) {
                return Ok(Err(LimitRefusal::RegisteredLimitInUse));
            }
            let taken = registered_for!(
                tx,
                q,
                &r.service_id,
                r.region_id.as_ref(),
                &r.resource_name,
                &r.id
            );
            if !taken.is_empty() {
                return Err(duplicate("registered_limit"));
            }
            sqlx::query(&q(
                "UPDATE registered_limit SET service_id = ?, region_id = ?, resource_name = ?, \
                 default_limit = ?, description = ? WHERE id = ?",
            ))
            .bind(&r.service_id)
            .bind(&r.region_id)
            .bind(&r.resource_name)
            .bind(r.default_limit)
            .bind(&r.description)
            .bind(&r.id)
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
            Ok(Ok(()))
        })
    }

    /// Deletes a registered limit no limit uses.
    pub async fn delete_registered_limit(&self, id: &str) -> Result<Result<(), LimitRefusal>> {
        dispatch!(self, write, |pool, q| {
            let mut tx = crate::begin_write!(pool);
            if registered_in_use!(tx, q, id) {
                return Ok(Err(LimitRefusal::RegisteredLimitInUse));
            }
            sqlx::query(&q("DELETE FROM registered_limit WHERE id = ?"))
                .bind(id)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            Ok(Ok(()))
        })
    }

    /// Every limit, oldest first.
    pub async fn list_limits(&self) -> Result<Vec<Limit>> {
        dispatch!(self, read, |pool, q| {
            let sql = format!("{LIMIT_COLUMNS} ORDER BY l.internal_id");
            let rows = sqlx::query(&q(&sql)).fetch_all(pool).await?;
            let mut out = Vec::with_capacity(rows.len());
            for row in rows {
                out.push(limit_row!(row));
            }
            Ok(out)
        })
    }

    /// A limit by id; `NotFound` (kind `limit`) when there is none.
    pub async fn get_limit(&self, id: &str) -> Result<Limit> {
        dispatch!(self, read, |pool, q| {
            let sql = format!("{LIMIT_COLUMNS} WHERE l.id = ?");
            let row = sqlx::query(&q(&sql))
                .bind(id)
                .fetch_optional(pool)
                .await?
                .ok_or_else(|| limit_not_found(id))?;
            Ok(limit_row!(row))
        })
    }

    /// Creates limits, all or none. Each must name a registered limit; `Conflict` when its
    /// project or domain already has a limit for that registered limit.
    pub async fn create_limits(&self, limits: &[NewLimit]) -> Result<Result<(), LimitRefusal>> {
        dispatch!(self, write, |pool, q| {
            let mut tx = crate::begin_write!(pool);
            for l in limits {
                let registered = registered_for!(
                    tx,
                    q,
                    &l.service_id,
                    l.region_id.as_ref(),
                    &l.resource_name,
                    ""
                );
                let Some(registered) = registered.into_iter().next() else {
                    return Ok(Err(LimitRefusal::NoRegisteredLimit));
                };
                let (column, owner) = match (&l.project_id, &l.domain_id) {
                    (Some(p), _) => ("project_id", p),
                    (None, Some(d)) => ("domain_id", d),
                    (None, None) => return Ok(Err(LimitRefusal::NoRegisteredLimit)),
                };
                let sql = format!(
                    "SELECT id FROM \"limit\" WHERE registered_limit_id = ? AND {column} = ?"
                );
                let taken = sqlx::query(&q(&sql))
                    .bind(&registered)
                    .bind(owner)
                    .fetch_optional(&mut *tx)
                    .await?;
                if taken.is_some() {
                    return Err(duplicate("limit"));
                }
                sqlx::query(&q(
                    "INSERT INTO \"limit\" (id, project_id, domain_id, resource_limit, \
                     description, registered_limit_id) VALUES (?, ?, ?, ?, ?, ?)",
                ))
                .bind(&l.id)
                .bind(&l.project_id)
                .bind(&l.domain_id)
                .bind(l.resource_limit)
                .bind(&l.description)
                .bind(&registered)
                .execute(&mut *tx)
                .await?;
            }
            tx.commit().await?;
            Ok(Ok(()))
        })
    }

    /// Writes a limit's value and description.
    pub async fn update_limit(&self, l: &Limit) -> Result<()> {
        dispatch!(self, write, |pool, q| {
            let done = sqlx::query(&q(
                "UPDATE \"limit\" SET resource_limit = ?, description = ? WHERE id = ?",
            ))
            .bind(l.resource_limit)
            .bind(&l.description)
            .bind(&l.id)
            .execute(pool)
            .await?;
            // MySQL counts changed rows only: an update that changes nothing is still a hit.
            if done.rows_affected() == 0 {
                self.get_limit(&l.id).await?;
            }
            Ok(())
        })
    }

    /// Deletes a limit.
    pub async fn delete_limit(&self, id: &str) -> Result<()> {
        dispatch!(self, write, |pool, q| {
            let done = sqlx::query(&q("DELETE FROM \"limit\" WHERE id = ?"))
                .bind(id)
                .execute(pool)
                .await?;
            if done.rows_affected() == 0 {
                return Err(limit_not_found(id));
            }
            Ok(())
        })
    }
}
