//! Services, endpoints and regions: what the token catalog is built from.

use crate::{dispatch, Endpoint, Region, Result, Service, Store};

impl Store {
    pub async fn list_services(&self) -> Result<Vec<Service>> {
        dispatch!(self, read, |pool, q| {
            let rows = sqlx::query(&q("SELECT id, type, enabled, extra FROM service"))
                .fetch_all(pool)
                .await?;
            let mut out = Vec::with_capacity(rows.len());
            for row in rows {
                // Keystone keeps name and description inside the `extra` JSON blob.
                let extra: Option<String> = row.try_get("extra")?;
                let extra: serde_json::Value = extra
                    .as_deref()
                    .and_then(|e| serde_json::from_str(e).ok())
                    .unwrap_or_default();
                out.push(Service {
                    id: row.try_get("id")?,
                    service_type: row
                        .try_get::<Option<String>, _>("type")?
                        .unwrap_or_default(),
                    name: extra
                        .get("name")
                        .and_then(|v| v.as_str())
                        .unwrap_or("")
                        .to_string(),
                    description: extra
                        .get("description")
                        .and_then(|v| v.as_str())
                        .map(str::to_string),
                    enabled: row.try_get("enabled")?,
                });
            }
            Ok(out)
        })
    }

    pub async fn list_endpoints(&self) -> Result<Vec<Endpoint>> {
        dispatch!(self, read, |pool, q| {
            let rows = sqlx::query(&q(
                "SELECT id, service_id, interface, region_id, url, enabled FROM endpoint",
            ))
            .fetch_all(pool)
            .await?;
            let mut out = Vec::with_capacity(rows.len());
            for row in rows {
                out.push(Endpoint {
                    id: row.try_get("id")?,
                    service_id: row.try_get("service_id")?,
                    interface: row.try_get("interface")?,
                    region_id: row.try_get("region_id")?,
                    url: row.try_get("url")?,
                    enabled: row.try_get("enabled")?,
                });
            }
            Ok(out)
        })
    }

    pub async fn list_regions(&self) -> Result<Vec<Region>> {
        dispatch!(self, read, |pool, q| {
            let rows = sqlx::query(&q("SELECT id, description, parent_region_id FROM region"))
                .fetch_all(pool)
                .await?;
            let mut out = Vec::with_capacity(rows.len());
            for row in rows {
                out.push(Region {
                    id: row.try_get("id")?,
                    description: row.try_get("description")?,
                    parent_region_id: row.try_get("parent_region_id")?,
                });
            }
            Ok(out)
        })
    }
}
