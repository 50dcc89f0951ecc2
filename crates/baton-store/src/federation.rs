//! Federation resources in Keystone's tables: service providers (`service_provider`, the
//! remote clouds a token may be taken to, listed in every token while enabled).

use crate::{dispatch, Result, Store, StoreError};

/// A service provider.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceProvider {
    /// Its id, chosen by the operator.
    pub id: String,
    /// Whether tokens list it.
    pub enabled: bool,
    /// Free text.
    pub description: Option<String>,
    /// Where to authenticate at the remote cloud.
    pub auth_url: String,
    /// Where the remote cloud takes SAML assertions.
    pub sp_url: String,
    /// The prefix of the SAML RelayState attribute.
    pub relay_state_prefix: String,
}

const SP_COLUMNS: &str =
    "SELECT id, enabled, description, auth_url, sp_url, relay_state_prefix FROM service_provider";

macro_rules! sp_row {
    ($row:expr) => {
        ServiceProvider {
            id: $row.try_get("id")?,
            enabled: $row.try_get("enabled")?,
            description: $row.try_get("description")?,
            auth_url: $row.try_get("auth_url")?,
            sp_url: $row.try_get("sp_url")?,
            relay_state_prefix: $row.try_get("relay_state_prefix")?,
        }
    };
}

fn sp_not_found(id: &str) -> StoreError {
    StoreError::NotFound {
        kind: "Service Provider",
        id: id.to_string(),
    }
}

impl Store {
    /// Every service provider, in the database's order.
    pub async fn list_service_providers(&self) -> Result<Vec<ServiceProvider>> {
        dispatch!(self, read, |pool, q| {
            let rows = sqlx::query(&q(SP_COLUMNS)).fetch_all(pool).await?;
            let mut out = Vec::with_capacity(rows.len());
            for row in rows {
                out.push(sp_row!(row));
            }
            Ok(out)
        })
    }

    /// A service provider by id; `NotFound` (kind `Service Provider`, as Keystone words it)
    /// when there is none.
    pub async fn get_service_provider(&self, id: &str) -> Result<ServiceProvider> {
        dispatch!(self, read, |pool, q| {
            let sql = format!("{SP_COLUMNS} WHERE id = ?");
            let row = sqlx::query(&q(&sql))
                .bind(id)
                .fetch_optional(pool)
                .await?
                .ok_or_else(|| sp_not_found(id))?;
            Ok(sp_row!(row))
        })
    }

    /// Creates a service provider (`Conflict` when the id is taken), or writes all of an
    /// existing one's attributes.
    pub async fn put_service_provider(&self, sp: &ServiceProvider, creating: bool) -> Result<()> {
        dispatch!(self, write, |pool, q| {
            let mut tx = crate::begin_write!(pool);
            if creating {
                let taken = sqlx::query(&q("SELECT id FROM service_provider WHERE id = ?"))
                    .bind(&sp.id)
                    .fetch_optional(&mut *tx)
                    .await?;
                if taken.is_some() {
                    return Err(StoreError::Conflict(format!(
                        "service_provider - Duplicate entry found with ID {}.",
                        sp.id
                    )));
                }
            }
            let sql = if creating {
                "INSERT INTO service_provider (enabled, description, auth_url, sp_url, relay_state_prefix, id) VALUES (?, ?, ?, ?, ?, ?)"
            } else {
                "UPDATE service_provider SET enabled = ?, description = ?, auth_url = ?, sp_url = ?, relay_state_prefix = ? WHERE id = ?"
            };
            let done = sqlx::query(&q(sql))
                .bind(sp.enabled)
                .bind(&sp.description)
                .bind(&sp.auth_url)
                .bind(&sp.sp_url)
                .bind(&sp.relay_state_prefix)
                .bind(&sp.id)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            // MySQL counts changed rows only: an update that changes nothing is still a hit.
            if done.rows_affected() == 0 {
                self.get_service_provider(&sp.id).await?;
            }
            Ok(())
        })
    }

    /// Deletes a service provider.
    pub async fn delete_service_provider(&self, id: &str) -> Result<()> {
        dispatch!(self, write, |pool, q| {
            let done = sqlx::query(&q("DELETE FROM service_provider WHERE id = ?"))
                .bind(id)
                .execute(pool)
                .await?;
            if done.rows_affected() == 0 {
                return Err(sp_not_found(id));
            }
            Ok(())
        })
    }
}
