//! Projects and domains (domains are `project` rows with `is_domain` set, under the root row).

use crate::{dispatch, Project, Result, Store, ROOT_DOMAIN_ID};

const PROJECT_COLUMNS: &str =
    "SELECT id, name, domain_id, parent_id, enabled, is_domain, description, extra FROM project";

macro_rules! project_from_row {
    ($row:expr) => {
        Project {
            id: $row.try_get("id")?,
            name: $row.try_get("name")?,
            domain_id: $row.try_get("domain_id")?,
            parent_id: $row.try_get("parent_id")?,
            enabled: $row.try_get::<Option<bool>, _>("enabled")?.unwrap_or(false),
            is_domain: $row.try_get("is_domain")?,
            description: $row.try_get("description")?,
            extra: $row.try_get("extra")?,
        }
    };
}

impl Store {
    /// A project or domain by id (never the root-domain row).
    pub async fn get_project(&self, id: &str) -> Result<Option<Project>> {
        if id == ROOT_DOMAIN_ID {
            return Ok(None);
        }
        dispatch!(self, read, |pool, q| {
            let sql = format!("{PROJECT_COLUMNS} WHERE id = ?");
            let row = sqlx::query(&q(&sql)).bind(id).fetch_optional(pool).await?;
            Ok(match row {
                Some(row) => Some(project_from_row!(row)),
                None => None,
            })
        })
    }

    /// A domain by id.
    pub async fn get_domain(&self, id: &str) -> Result<Option<Project>> {
        Ok(self.get_project(id).await?.filter(|p| p.is_domain))
    }

    /// A domain by its (globally unique) name.
    pub async fn find_domain(&self, name: &str) -> Result<Option<Project>> {
        self.find_project_in(name, ROOT_DOMAIN_ID).await
    }

    /// A project (not a domain) by name within a domain.
    pub async fn find_project(&self, name: &str, domain_id: &str) -> Result<Option<Project>> {
        Ok(self
            .find_project_in(name, domain_id)
            .await?
            .filter(|p| !p.is_domain))
    }

    async fn find_project_in(&self, name: &str, domain_id: &str) -> Result<Option<Project>> {
        dispatch!(self, read, |pool, q| {
            let sql = format!("{PROJECT_COLUMNS} WHERE name = ? AND domain_id = ?");
            let row = sqlx::query(&q(&sql))
                .bind(name)
                .bind(domain_id)
                .fetch_optional(pool)
                .await?;
            Ok(match row {
                Some(row) => Some(project_from_row!(row)),
                None => None,
            })
        })
    }

    /// All projects (not domains) of a domain; used for inherited domain grants.
    pub async fn list_projects_in_domain(&self, domain_id: &str) -> Result<Vec<Project>> {
        dispatch!(self, read, |pool, q| {
            let sql = format!("{PROJECT_COLUMNS} WHERE domain_id = ? AND is_domain = ?");
            let rows = sqlx::query(&q(&sql))
                .bind(domain_id)
                .bind(false)
                .fetch_all(pool)
                .await?;
            let mut out = Vec::with_capacity(rows.len());
            for row in rows {
                out.push(project_from_row!(row));
            }
            Ok(out)
        })
    }

    /// Inserts a project or domain row; `Conflict` when the name is taken in its domain.
    pub async fn create_project(&self, p: &Project) -> Result<()> {
        dispatch!(self, write, |pool, q| {
            let mut tx = crate::begin_write!(pool);
            let taken = sqlx::query(&q(
                "SELECT id FROM project WHERE name = ? AND domain_id = ?",
            ))
            .bind(&p.name)
            .bind(&p.domain_id)
            .fetch_optional(&mut *tx)
            .await?;
            if taken.is_some() {
                return Err(crate::StoreError::Conflict(format!(
                    "Duplicate entry found with name {}.",
                    p.name
                )));
            }
            sqlx::query(&q(
                "INSERT INTO project (id, name, extra, description, enabled, domain_id, parent_id, is_domain) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            ))
            .bind(&p.id)
            .bind(&p.name)
            .bind(p.extra.as_deref().unwrap_or("{}"))
            .bind(p.description.as_deref().unwrap_or(""))
            .bind(p.enabled)
            .bind(&p.domain_id)
            .bind(&p.parent_id)
            .bind(p.is_domain)
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
            Ok(())
        })
    }

    pub async fn set_project_enabled(&self, id: &str, enabled: bool) -> Result<()> {
        dispatch!(self, write, |pool, q| {
            sqlx::query(&q("UPDATE project SET enabled = ? WHERE id = ?"))
                .bind(enabled)
                .bind(id)
                .execute(pool)
                .await?;
            Ok(())
        })
    }
}
