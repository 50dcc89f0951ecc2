//! Services, endpoints and regions: what the token catalog is built from.
//!
//! Rows are kept exactly as Keystone keeps them, so a database shared with Keystone stays
//! readable by it: a service's `name` and `description` live in its `extra` JSON blob next to any
//! other attribute a client set, and so do the extra attributes of endpoints and regions.

use std::collections::{HashMap, HashSet};

use serde_json::{Map, Value};

use crate::{dispatch, Endpoint, Region, Result, Service, Store, StoreError};

/// What [`Store::update_region`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RegionUpdate {
    /// The region was changed.
    Updated,
    /// The new parent is the region itself or one of its descendants.
    Circular,
}

/// What [`Store::delete_region`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RegionDelete {
    /// The region and these descendants (deleted with it, as Keystone does) are gone.
    Deleted {
        /// The ids of the sub-regions deleted with it.
        descendants: Vec<String>,
    },
    /// The region or one of its descendants still has endpoints: nothing was deleted.
    HasEndpoints,
}

fn parse_extra(extra: Option<String>) -> Map<String, Value> {
    match extra.as_deref().map(serde_json::from_str::<Value>) {
        Some(Ok(Value::Object(m))) => m,
        _ => Map::new(),
    }
}

fn extra_text(extra: &Map<String, Value>) -> String {
    Value::Object(extra.clone()).to_string()
}

/// The `extra` blob of a service: its stored extras with `name` and `description` put back in,
/// where Keystone keeps them.
fn service_extra(s: &Service) -> String {
    let mut extra = s.extra.clone();
    extra.insert("name".into(), Value::String(s.name.clone()));
    if let Some(d) = &s.description {
        extra.insert("description".into(), Value::String(d.clone()));
    }
    extra_text(&extra)
}

fn service_from_row(
    id: String,
    service_type: Option<String>,
    enabled: bool,
    extra: Option<String>,
) -> Service {
    let extra = parse_extra(extra);
    Service {
        id,
        service_type: service_type.unwrap_or_default(),
        name: extra
            .get("name")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string(),
        description: extra
            .get("description")
            .and_then(Value::as_str)
            .map(str::to_string),
        enabled,
        extra,
    }
}

/// `region_id` and every region below it (children, their children...), stopping at a cycle
/// a database written by hand might hold.
fn subtree(region_id: &str, parents: &HashMap<String, Option<String>>) -> Vec<String> {
    let mut children: HashMap<&str, Vec<&str>> = HashMap::new();
    for (id, parent) in parents {
        if let Some(p) = parent {
            children.entry(p.as_str()).or_default().push(id.as_str());
        }
    }
    let mut seen: HashSet<&str> = HashSet::from([region_id]);
    let mut order = vec![region_id.to_string()];
    let mut stack = vec![region_id];
    while let Some(id) = stack.pop() {
        for child in children.get(id).into_iter().flatten() {
            if seen.insert(child) {
                order.push((*child).to_string());
                stack.push(child);
            }
        }
    }
    order
}

const SERVICE_COLUMNS: &str = "SELECT id, type, enabled, extra FROM service";
const ENDPOINT_COLUMNS: &str =
    "SELECT id, service_id, interface, region_id, url, enabled, extra FROM endpoint";
const REGION_COLUMNS: &str = "SELECT id, description, parent_region_id, extra FROM region";

macro_rules! service_row {
    ($row:expr) => {{
        let row = $row;
        service_from_row(
            row.try_get("id")?,
            row.try_get("type")?,
            row.try_get("enabled")?,
            row.try_get("extra")?,
        )
    }};
}

macro_rules! endpoint_row {
    ($row:expr) => {{
        let row = $row;
        Endpoint {
            id: row.try_get("id")?,
            service_id: row.try_get("service_id")?,
            interface: row.try_get("interface")?,
            region_id: row.try_get("region_id")?,
            url: row.try_get("url")?,
            enabled: row.try_get("enabled")?,
            extra: parse_extra(row.try_get("extra")?),
        }
    }};
}

macro_rules! region_row {
    ($row:expr) => {{
        let row = $row;
        Region {
            id: row.try_get("id")?,
            description: row.try_get("description")?,
            parent_region_id: row.try_get("parent_region_id")?,
            extra: parse_extra(row.try_get("extra")?),
        }
    }};
}

fn not_found(kind: &'static str, id: &str) -> StoreError {
    StoreError::NotFound {
        kind,
        id: id.to_string(),
    }
}

impl Store {
    // ----- services ----------------------------------------------------------------------------

    /// Every service of the catalog, enabled or not.
    pub async fn list_services(&self) -> Result<Vec<Service>> {
        dispatch!(self, read, |pool, q| {
            let rows = sqlx::query(&q(SERVICE_COLUMNS)).fetch_all(pool).await?;
            let mut out = Vec::with_capacity(rows.len());
            for row in rows {
                out.push(service_row!(row));
            }
            Ok(out)
        })
    }

    /// A service by id; `NotFound` (kind `service`) when there is none.
    pub async fn get_service(&self, id: &str) -> Result<Service> {
        dispatch!(self, read, |pool, q| {
            let sql = format!("{SERVICE_COLUMNS} WHERE id = ?");
            let row = sqlx::query(&q(&sql))
                .bind(id)
                .fetch_optional(pool)
                .await?
                .ok_or_else(|| not_found("service", id))?;
            Ok(service_row!(row))
        })
    }

    /// Adds a service to the catalog.
    pub async fn create_service(&self, s: &Service) -> Result<()> {
        let extra = service_extra(s);
        dispatch!(self, write, |pool, q| {
            sqlx::query(&q(
                "INSERT INTO service (id, type, enabled, extra) VALUES (?, ?, ?, ?)",
            ))
            .bind(&s.id)
            .bind(&s.service_type)
            .bind(s.enabled)
            .bind(&extra)
            .execute(pool)
            .await?;
            Ok(())
        })
    }

    /// Writes a service's type, enabled flag and extras (with name and description).
    pub async fn update_service(&self, s: &Service) -> Result<()> {
        let extra = service_extra(s);
        dispatch!(self, write, |pool, q| {
            let done = sqlx::query(&q(
                "UPDATE service SET type = ?, enabled = ?, extra = ? WHERE id = ?",
            ))
            .bind(&s.service_type)
            .bind(s.enabled)
            .bind(&extra)
            .bind(&s.id)
            .execute(pool)
            .await?;
            // MySQL counts changed rows only: an update that changes nothing is still a hit.
            if done.rows_affected() == 0 {
                self.get_service(&s.id).await?;
            }
            Ok(())
        })
    }

    /// Deletes a service with its endpoints (and their project associations), as Keystone
    /// does; returns the ids of the endpoints removed.
    pub async fn delete_service(&self, id: &str) -> Result<Vec<String>> {
        dispatch!(self, write, |pool, q| {
            let mut tx = crate::begin_write!(pool);
            sqlx::query(&q("SELECT id FROM service WHERE id = ?"))
                .bind(id)
                .fetch_optional(&mut *tx)
                .await?
                .ok_or_else(|| not_found("service", id))?;
            let endpoints: Vec<String> =
                sqlx::query_scalar(&q("SELECT id FROM endpoint WHERE service_id = ?"))
                    .bind(id)
                    .fetch_all(&mut *tx)
                    .await?;
            for endpoint_id in &endpoints {
                sqlx::query(&q("DELETE FROM project_endpoint WHERE endpoint_id = ?"))
                    .bind(endpoint_id)
                    .execute(&mut *tx)
                    .await?;
            }
            // Children first: PostgreSQL and MariaDB enforce endpoint.service_id.
            sqlx::query(&q("DELETE FROM endpoint WHERE service_id = ?"))
                .bind(id)
                .execute(&mut *tx)
                .await?;
            sqlx::query(&q("DELETE FROM service WHERE id = ?"))
                .bind(id)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            Ok(endpoints)
        })
    }

    // ----- endpoints ---------------------------------------------------------------------------

    /// Every endpoint of the catalog, enabled or not.
    pub async fn list_endpoints(&self) -> Result<Vec<Endpoint>> {
        dispatch!(self, read, |pool, q| {
            let rows = sqlx::query(&q(ENDPOINT_COLUMNS)).fetch_all(pool).await?;
            let mut out = Vec::with_capacity(rows.len());
            for row in rows {
                out.push(endpoint_row!(row));
            }
            Ok(out)
        })
    }

    /// An endpoint by id; `NotFound` (kind `endpoint`) when there is none.
    pub async fn get_endpoint(&self, id: &str) -> Result<Endpoint> {
        dispatch!(self, read, |pool, q| {
            let sql = format!("{ENDPOINT_COLUMNS} WHERE id = ?");
            let row = sqlx::query(&q(&sql))
                .bind(id)
                .fetch_optional(pool)
                .await?
                .ok_or_else(|| not_found("endpoint", id))?;
            Ok(endpoint_row!(row))
        })
    }

    /// Creates an endpoint. `NotFound` with kind `region` or `service` when what it points to
    /// does not exist (checked in the same transaction, so a concurrent delete cannot slip in
    /// on SQLite, which does not enforce the foreign keys).
    pub async fn create_endpoint(&self, e: &Endpoint) -> Result<()> {
        let extra = extra_text(&e.extra);
        dispatch!(self, write, |pool, q| {
            let mut tx = crate::begin_write!(pool);
            if let Some(region_id) = &e.region_id {
                sqlx::query(&q("SELECT id FROM region WHERE id = ?"))
                    .bind(region_id)
                    .fetch_optional(&mut *tx)
                    .await?
                    .ok_or_else(|| not_found("region", region_id))?;
            }
            sqlx::query(&q("SELECT id FROM service WHERE id = ?"))
                .bind(&e.service_id)
                .fetch_optional(&mut *tx)
                .await?
                .ok_or_else(|| not_found("service", &e.service_id))?;
            sqlx::query(&q(
                "INSERT INTO endpoint (id, legacy_endpoint_id, interface, service_id, url, extra, enabled, region_id) VALUES (?, NULL, ?, ?, ?, ?, ?, ?)",
            ))
            .bind(&e.id)
            .bind(&e.interface)
            .bind(&e.service_id)
            .bind(&e.url)
            .bind(&extra)
            .bind(e.enabled)
            .bind(&e.region_id)
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
            Ok(())
        })
    }

    /// Writes every column of an endpoint but `legacy_endpoint_id`. `NotFound` with kind
    /// `region` or `service` for a missing reference (checked first, as Keystone does), kind
    /// `endpoint` when the endpoint itself is gone.
    pub async fn update_endpoint(&self, e: &Endpoint) -> Result<()> {
        let extra = extra_text(&e.extra);
        dispatch!(self, write, |pool, q| {
            let mut tx = crate::begin_write!(pool);
            if let Some(region_id) = &e.region_id {
                sqlx::query(&q("SELECT id FROM region WHERE id = ?"))
                    .bind(region_id)
                    .fetch_optional(&mut *tx)
                    .await?
                    .ok_or_else(|| not_found("region", region_id))?;
            }
            sqlx::query(&q("SELECT id FROM service WHERE id = ?"))
                .bind(&e.service_id)
                .fetch_optional(&mut *tx)
                .await?
                .ok_or_else(|| not_found("service", &e.service_id))?;
            sqlx::query(&q("SELECT id FROM endpoint WHERE id = ?"))
                .bind(&e.id)
                .fetch_optional(&mut *tx)
                .await?
                .ok_or_else(|| not_found("endpoint", &e.id))?;
            sqlx::query(&q(
                "UPDATE endpoint SET interface = ?, service_id = ?, url = ?, extra = ?, enabled = ?, region_id = ? WHERE id = ?",
            ))
            .bind(&e.interface)
            .bind(&e.service_id)
            .bind(&e.url)
            .bind(&extra)
            .bind(e.enabled)
            .bind(&e.region_id)
            .bind(&e.id)
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
            Ok(())
        })
    }

    /// Deletes an endpoint and its project associations (Keystone's endpoint filter drops them
    /// when an endpoint is deleted).
    pub async fn delete_endpoint(&self, id: &str) -> Result<()> {
        dispatch!(self, write, |pool, q| {
            let mut tx = crate::begin_write!(pool);
            sqlx::query(&q("DELETE FROM project_endpoint WHERE endpoint_id = ?"))
                .bind(id)
                .execute(&mut *tx)
                .await?;
            let done = sqlx::query(&q("DELETE FROM endpoint WHERE id = ?"))
                .bind(id)
                .execute(&mut *tx)
                .await?;
            if done.rows_affected() == 0 {
                return Err(not_found("endpoint", id));
            }
            tx.commit().await?;
            Ok(())
        })
    }

    // ----- regions -----------------------------------------------------------------------------

    /// Every region.
    pub async fn list_regions(&self) -> Result<Vec<Region>> {
        dispatch!(self, read, |pool, q| {
            let rows = sqlx::query(&q(REGION_COLUMNS)).fetch_all(pool).await?;
            let mut out = Vec::with_capacity(rows.len());
            for row in rows {
                out.push(region_row!(row));
            }
            Ok(out)
        })
    }

    /// A region by id; `NotFound` (kind `region`) when there is none.
    pub async fn get_region(&self, id: &str) -> Result<Region> {
        dispatch!(self, read, |pool, q| {
            let sql = format!("{REGION_COLUMNS} WHERE id = ?");
            let row = sqlx::query(&q(&sql))
                .bind(id)
                .fetch_optional(pool)
                .await?
                .ok_or_else(|| not_found("region", id))?;
            Ok(region_row!(row))
        })
    }

    /// Creates a region. `Conflict` when the id is taken; `NotFound` (kind `region`, the
    /// parent's id) when the parent does not exist.
    pub async fn create_region(&self, r: &Region) -> Result<()> {
        let extra = extra_text(&r.extra);
        dispatch!(self, write, |pool, q| {
            let mut tx = crate::begin_write!(pool);
            let taken = sqlx::query(&q("SELECT id FROM region WHERE id = ?"))
                .bind(&r.id)
                .fetch_optional(&mut *tx)
                .await?;
            if taken.is_some() {
                // Keystone's message has this doubled full stop (its details end with one).
                return Err(StoreError::Conflict(format!(
                    "region - Duplicate ID, {}..",
                    r.id
                )));
            }
            if let Some(parent) = &r.parent_region_id {
                sqlx::query(&q("SELECT id FROM region WHERE id = ?"))
                    .bind(parent)
                    .fetch_optional(&mut *tx)
                    .await?
                    .ok_or_else(|| not_found("region", parent))?;
            }
            sqlx::query(&q(
                "INSERT INTO region (id, description, parent_region_id, extra) VALUES (?, ?, ?, ?)",
            ))
            .bind(&r.id)
            .bind(&r.description)
            .bind(&r.parent_region_id)
            .bind(&extra)
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
            Ok(())
        })
    }

    /// Writes a region's description, parent and extras. `NotFound` (kind `region`) for a
    /// missing parent (checked first, as Keystone does) or a missing region; `Circular` when
    /// the new parent is the region itself or below it.
    pub async fn update_region(&self, r: &Region) -> Result<RegionUpdate> {
        let extra = extra_text(&r.extra);
        dispatch!(self, write, |pool, q| {
            let mut tx = crate::begin_write!(pool);
            let rows = sqlx::query(&q("SELECT id, parent_region_id FROM region"))
                .fetch_all(&mut *tx)
                .await?;
            let mut parents: HashMap<String, Option<String>> = HashMap::new();
            for row in rows {
                parents.insert(row.try_get("id")?, row.try_get("parent_region_id")?);
            }
            if let Some(parent) = &r.parent_region_id {
                if !parents.contains_key(parent) {
                    return Err(not_found("region", parent));
                }
            }
            if !parents.contains_key(&r.id) {
                return Err(not_found("region", &r.id));
            }
            if let Some(parent) = &r.parent_region_id {
                if subtree(&r.id, &parents).contains(parent) {
                    return Ok(RegionUpdate::Circular);
                }
            }
            sqlx::query(&q(
                "UPDATE region SET description = ?, parent_region_id = ?, extra = ? WHERE id = ?",
            ))
            .bind(&r.description)
            .bind(&r.parent_region_id)
            .bind(&extra)
            .bind(&r.id)
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
            Ok(RegionUpdate::Updated)
        })
    }

    /// Deletes a region with all regions below it, unless any of them has endpoints (Keystone
    /// refuses then). `NotFound` (kind `region`) when there is no such region.
    pub async fn delete_region(&self, id: &str) -> Result<RegionDelete> {
        dispatch!(self, write, |pool, q| {
            let mut tx = crate::begin_write!(pool);
            let rows = sqlx::query(&q("SELECT id, parent_region_id FROM region"))
                .fetch_all(&mut *tx)
                .await?;
            let mut parents: HashMap<String, Option<String>> = HashMap::new();
            for row in rows {
                parents.insert(row.try_get("id")?, row.try_get("parent_region_id")?);
            }
            if !parents.contains_key(id) {
                return Err(not_found("region", id));
            }
            let doomed = subtree(id, &parents);
            let marks = vec!["?"; doomed.len()].join(", ");
            let probe = format!("SELECT id FROM endpoint WHERE region_id IN ({marks})");
            let probe = q(&probe);
            let mut query = sqlx::query(&probe);
            for region_id in &doomed {
                query = query.bind(region_id);
            }
            if query.fetch_optional(&mut *tx).await?.is_some() {
                return Ok(RegionDelete::HasEndpoints);
            }
            let delete = format!("DELETE FROM region WHERE id IN ({marks})");
            let delete = q(&delete);
            let mut query = sqlx::query(&delete);
            for region_id in &doomed {
                query = query.bind(region_id);
            }
            query.execute(&mut *tx).await?;
            tx.commit().await?;
            Ok(RegionDelete::Deleted {
                descendants: doomed.into_iter().skip(1).collect(),
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subtree_follows_children_and_survives_cycles() {
        let parents: HashMap<String, Option<String>> = [
            ("a", None),
            ("b", Some("a")),
            ("c", Some("b")),
            ("d", None),
            // a hand-made cycle below `d`
            ("x", Some("y")),
            ("y", Some("x")),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.map(str::to_string)))
        .collect();
        assert_eq!(subtree("a", &parents), ["a", "b", "c"]);
        assert_eq!(subtree("c", &parents), ["c"]);
        let mut cycle = subtree("x", &parents);
        cycle.sort();
        assert_eq!(cycle, ["x", "y"]);
    }

    #[test]
    fn service_extra_keeps_name_and_description_where_keystone_does() {
        let mut extra = Map::new();
        extra.insert("email".into(), Value::String("ops@example.org".into()));
        let s = Service {
            id: "s".into(),
            service_type: "compute".into(),
            name: "nova".into(),
            enabled: true,
            description: Some("Compute".into()),
            extra,
        };
        let text = service_extra(&s);
        let back = service_from_row("s".into(), Some("compute".into()), true, Some(text));
        assert_eq!(back.name, "nova");
        assert_eq!(back.description.as_deref(), Some("Compute"));
        assert_eq!(back.extra["email"], "ops@example.org");
        assert_eq!(back.extra["name"], "nova");
    }
}
