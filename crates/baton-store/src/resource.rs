//! Projects and domains (domains are `project` rows with `is_domain` set, under the root row).

use std::collections::HashMap;

use crate::{dispatch, Project, Result, Store, StoreError, ROOT_DOMAIN_ID};

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

/// Keystone's wording for a taken name (the API prefixes "Conflict occurred attempting to store").
fn name_conflict(p: &Project) -> StoreError {
    StoreError::Conflict(if p.is_domain {
        format!("domain - Duplicate entry found with name {}.", p.name)
    } else {
        format!(
            "project - it is not permitted to have two projects with the same name in the same domain : {}.",
            p.name
        )
    })
}

/// A `project` column a request may select rows by; each has an index (`parent_id`'s is
/// Baton's own on SQLite and PostgreSQL, see `Store::ensure_baton_tables`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProjectColumn {
    /// The rows themselves.
    Id,
    /// The children of the given projects (or the top-level projects of the given domains).
    ParentId,
    /// Every project of the given domains.
    DomainId,
    /// By name (with `DomainId`, the unique `(domain_id, name)` index).
    Name,
}

impl ProjectColumn {
    fn name(self) -> &'static str {
        match self {
            ProjectColumn::Id => "id",
            ProjectColumn::ParentId => "parent_id",
            ProjectColumn::DomainId => "domain_id",
            ProjectColumn::Name => "name",
        }
    }
}

/// Ids bound per query (well under every backend's limit on bound parameters).
const IN_CHUNK: usize = 500;

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

    /// The project or domain rows (`is_domain`) equal to every filter given, never the
    /// root-domain row. The equality is the database's (MySQL's default collation ignores
    /// case): callers that need Keystone's exact match check again.
    pub async fn find_projects(
        &self,
        is_domain: bool,
        filters: &[(ProjectColumn, &str)],
    ) -> Result<Vec<Project>> {
        let mut sql = format!("{PROJECT_COLUMNS} WHERE is_domain = ? AND id <> ?");
        for (column, _) in filters {
            sql.push_str(&format!(" AND {} = ?", column.name()));
        }
        dispatch!(self, read, |pool, q| {
            let sql = q(&sql);
            let mut query = sqlx::query(&sql).bind(is_domain).bind(ROOT_DOMAIN_ID);
            for (_, value) in filters {
                query = query.bind(*value);
            }
            let rows = query.fetch_all(pool).await?;
            let mut out = Vec::with_capacity(rows.len());
            for row in rows {
                out.push(project_from_row!(row));
            }
            Ok(out)
        })
    }

    /// The project and domain rows whose `column` is one of `values` (never the root-domain
    /// row), in chunks of bound ids; each chunk is one indexed query.
    pub async fn projects_where(
        &self,
        column: ProjectColumn,
        values: &[String],
    ) -> Result<Vec<Project>> {
        let mut out = Vec::new();
        for chunk in values.chunks(IN_CHUNK) {
            let sql = format!(
                "{PROJECT_COLUMNS} WHERE {} IN ({}) AND id <> ?",
                column.name(),
                vec!["?"; chunk.len()].join(", ")
            );
            let part = dispatch!(self, read, |pool, q| {
                let sql = q(&sql);
                let mut query = sqlx::query(&sql);
                for v in chunk {
                    query = query.bind(v.as_str());
                }
                let rows = query.bind(ROOT_DOMAIN_ID).fetch_all(pool).await?;
                let mut part = Vec::with_capacity(rows.len());
                for row in rows {
                    part.push(project_from_row!(row));
                }
                Ok::<_, StoreError>(part)
            })?;
            out.extend(part);
        }
        Ok(out)
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
                return Err(name_conflict(p));
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

    /// Enables or disables a project or domain (a disabled one cannot be a token's scope).
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

    /// Whether any project has `id` as its parent.
    pub async fn project_has_children(&self, id: &str) -> Result<bool> {
        dispatch!(self, read, |pool, q| {
            let row = sqlx::query(&q("SELECT id FROM project WHERE parent_id = ? LIMIT 1"))
                .bind(id)
                .fetch_optional(pool)
                .await?;
            Ok(row.is_some())
        })
    }

    /// Writes a project's mutable columns (name, description, enabled, extra); `Conflict` when
    /// the new name is taken in its domain.
    pub async fn update_project(&self, p: &Project) -> Result<()> {
        dispatch!(self, write, |pool, q| {
            let mut tx = crate::begin_write!(pool);
            let taken = sqlx::query(&q(
                "SELECT id FROM project WHERE name = ? AND domain_id = ? AND id <> ?",
            ))
            .bind(&p.name)
            .bind(&p.domain_id)
            .bind(&p.id)
            .fetch_optional(&mut *tx)
            .await?;
            if taken.is_some() {
                return Err(name_conflict(p));
            }
            let done = sqlx::query(&q(
                "UPDATE project SET name = ?, description = ?, enabled = ?, extra = ? WHERE id = ?",
            ))
            .bind(&p.name)
            .bind(p.description.as_deref().unwrap_or(""))
            .bind(p.enabled)
            .bind(p.extra.as_deref().unwrap_or("{}"))
            .bind(&p.id)
            .execute(&mut *tx)
            .await?;
            if done.rows_affected() == 0 {
                return Err(StoreError::NotFound {
                    kind: "project",
                    id: p.id.clone(),
                });
            }
            tx.commit().await?;
            Ok(())
        })
    }

    /// The projects more than `max` levels below their domain, by id (Keystone's
    /// `check_project_depth`, run when a limit model bounds the depth). Reads the whole table's
    /// ids and parents, once, at start-up.
    pub async fn projects_deeper_than(&self, max: usize) -> Result<Vec<String>> {
        let rows: Vec<(String, Option<String>, bool)> = dispatch!(self, read, |pool, q| {
            let rows = sqlx::query(&q("SELECT id, parent_id, is_domain FROM project"))
                .fetch_all(pool)
                .await?;
            let mut out = Vec::with_capacity(rows.len());
            for row in rows {
                out.push((
                    row.try_get("id")?,
                    row.try_get("parent_id")?,
                    row.try_get("is_domain")?,
                ));
            }
            Ok::<_, StoreError>(out)
        })?;
        let parents: std::collections::HashMap<&str, (Option<&str>, bool)> = rows
            .iter()
            .map(|(id, parent, is_domain)| (id.as_str(), (parent.as_deref(), *is_domain)))
            .collect();
        let mut deep: Vec<String> = rows
            .iter()
            .filter(|(_, _, is_domain)| !is_domain)
            .filter(|(id, _, _)| {
                // Levels: the project and each project above it (a cycle stops the walk).
                let mut depth = 0;
                let mut at = Some(id.as_str());
                while let Some((parent, false)) = at.and_then(|i| parents.get(i).copied()) {
                    depth += 1;
                    if depth > max || depth > rows.len() {
                        break;
                    }
                    at = parent;
                }
                depth > max
            })
            .map(|(id, _, _)| id.clone())
            .collect();
        deep.sort();
        Ok(deep)
    }

    /// Deletes a leaf project (or an emptied domain) with its tags, options, endpoint filters,
    /// limits, domain configuration and every role assignment on it. Children must be gone first.
    pub async fn delete_project(&self, id: &str) -> Result<()> {
        dispatch!(self, write, |pool, q| {
            let mut tx = crate::begin_write!(pool);
            for sql in [
                "DELETE FROM project_tag WHERE project_id = ?",
                "DELETE FROM project_option WHERE project_id = ?",
                "DELETE FROM project_endpoint WHERE project_id = ?",
                "DELETE FROM project_endpoint_group WHERE project_id = ?",
                "DELETE FROM assignment WHERE target_id = ?",
                // A domain's own configuration goes with it, as in Keystone.
                "DELETE FROM whitelisted_config WHERE domain_id = ?",
                "DELETE FROM sensitive_config WHERE domain_id = ?",
                "DELETE FROM config_register WHERE domain_id = ?",
            ] {
                sqlx::query(&q(sql)).bind(id).execute(&mut *tx).await?;
            }
            // Its limits go with it; a domain's too (Keystone leaves those behind, orphaned).
            sqlx::query(&q(
                "DELETE FROM \"limit\" WHERE project_id = ? OR domain_id = ?",
            ))
            .bind(id)
            .bind(id)
            .execute(&mut *tx)
            .await?;
            let done = sqlx::query(&q("DELETE FROM project WHERE id = ?"))
                .bind(id)
                .execute(&mut *tx)
                .await?;
            if done.rows_affected() == 0 {
                return Err(StoreError::NotFound {
                    kind: "project",
                    id: id.to_string(),
                });
            }
            tx.commit().await?;
            Ok(())
        })
    }

    /// Deletes what a domain owns apart from its projects: its users (with passwords, options,
    /// memberships and assignments), its groups (with memberships and assignments) and its
    /// domain-specific roles (with their assignments and implications).
    pub async fn delete_domain_identities(&self, domain_id: &str) -> Result<()> {
        dispatch!(self, write, |pool, q| {
            let mut tx = crate::begin_write!(pool);
            let users: Vec<String> = sqlx::query(&q("SELECT id FROM \"user\" WHERE domain_id = ?"))
                .bind(domain_id)
                .fetch_all(&mut *tx)
                .await?
                .iter()
                .map(|r| r.try_get::<String, _>(0))
                .collect::<std::result::Result<_, _>>()?;
            let groups: Vec<String> =
                sqlx::query(&q("SELECT id FROM \"group\" WHERE domain_id = ?"))
                    .bind(domain_id)
                    .fetch_all(&mut *tx)
                    .await?
                    .iter()
                    .map(|r| r.try_get::<String, _>(0))
                    .collect::<std::result::Result<_, _>>()?;
            let roles: Vec<String> = sqlx::query(&q("SELECT id FROM role WHERE domain_id = ?"))
                .bind(domain_id)
                .fetch_all(&mut *tx)
                .await?
                .iter()
                .map(|r| r.try_get::<String, _>(0))
                .collect::<std::result::Result<_, _>>()?;
            for user in &users {
                for sql in [
                    "DELETE FROM password WHERE local_user_id IN (SELECT id FROM local_user WHERE user_id = ?)",
                    "DELETE FROM local_user WHERE user_id = ?",
                    "DELETE FROM nonlocal_user WHERE user_id = ?",
                    "DELETE FROM user_option WHERE user_id = ?",
                    "DELETE FROM user_group_membership WHERE user_id = ?",
                    "DELETE FROM assignment WHERE actor_id = ?",
                    "DELETE FROM system_assignment WHERE actor_id = ?",
                    "DELETE FROM \"user\" WHERE id = ?",
                ] {
                    sqlx::query(&q(sql)).bind(user).execute(&mut *tx).await?;
                }
            }
            for group in &groups {
                for sql in [
                    "DELETE FROM user_group_membership WHERE group_id = ?",
                    "DELETE FROM assignment WHERE actor_id = ?",
                    "DELETE FROM system_assignment WHERE actor_id = ?",
                    "DELETE FROM \"group\" WHERE id = ?",
                ] {
                    sqlx::query(&q(sql)).bind(group).execute(&mut *tx).await?;
                }
            }
            for role in &roles {
                for sql in [
                    "DELETE FROM assignment WHERE role_id = ?",
                    "DELETE FROM system_assignment WHERE role_id = ?",
                    "DELETE FROM implied_role WHERE prior_role_id = ? OR implied_role_id = ?",
                    "DELETE FROM role_option WHERE role_id = ?",
                    "DELETE FROM role WHERE id = ?",
                ] {
                    let sql_text = q(sql);
                    let mut query = sqlx::query(&sql_text).bind(role);
                    if sql.contains(" OR ") {
                        query = query.bind(role);
                    }
                    query.execute(&mut *tx).await?;
                }
            }
            tx.commit().await?;
            Ok(())
        })
    }

    /// The rows of `SELECT <columns> FROM <table> WHERE project_id IN (...)` for these ids, read
    /// in chunks (databases bound how many values one statement binds), every column as text.
    async fn rows_of_projects(
        &self,
        select: &str,
        project_ids: &[String],
        columns: usize,
    ) -> Result<Vec<Vec<Option<String>>>> {
        let mut out = Vec::new();
        for chunk in project_ids.chunks(IN_CHUNK) {
            let sql = format!(
                "{select} WHERE project_id IN ({})",
                vec!["?"; chunk.len()].join(", ")
            );
            let part = dispatch!(self, read, |pool, q| {
                let sql = q(&sql);
                let mut query = sqlx::query(&sql);
                for v in chunk {
                    query = query.bind(v.as_str());
                }
                let rows = query.fetch_all(pool).await?;
                let mut part = Vec::with_capacity(rows.len());
                for row in rows {
                    let mut cells = Vec::with_capacity(columns);
                    for i in 0..columns {
                        cells.push(row.try_get::<Option<String>, _>(i)?);
                    }
                    part.push(cells);
                }
                Ok::<_, StoreError>(part)
            })?;
            out.extend(part);
        }
        Ok(out)
    }

    /// The tags of these projects (or domains), each list sorted.
    pub async fn project_tags_of(
        &self,
        project_ids: &[String],
    ) -> Result<HashMap<String, Vec<String>>> {
        let rows = self
            .rows_of_projects("SELECT project_id, name FROM project_tag", project_ids, 2)
            .await?;
        let mut out: HashMap<String, Vec<String>> = HashMap::new();
        for mut row in rows {
            let tag = row.pop().flatten().unwrap_or_default();
            let id = row.pop().flatten().unwrap_or_default();
            out.entry(id).or_default().push(tag);
        }
        for tags in out.values_mut() {
            tags.sort();
        }
        Ok(out)
    }

    /// The resource options (`project_option`: option id such as `IMMU`, JSON value) of these
    /// projects or domains.
    pub async fn project_options_of(
        &self,
        project_ids: &[String],
    ) -> Result<HashMap<String, Vec<(String, String)>>> {
        let rows = self
            .rows_of_projects(
                "SELECT project_id, option_id, option_value FROM project_option",
                project_ids,
                3,
            )
            .await?;
        let mut out: HashMap<String, Vec<(String, String)>> = HashMap::new();
        for mut row in rows {
            let value = row.pop().flatten().unwrap_or_default();
            let option = row.pop().flatten().unwrap_or_default();
            let id = row.pop().flatten().unwrap_or_default();
            out.entry(id).or_default().push((option, value));
        }
        for options in out.values_mut() {
            options.sort();
        }
        Ok(out)
    }

    /// Sets (`Some`, JSON text) or removes (`None`) one resource option of a project or domain.
    pub async fn set_project_option(
        &self,
        project_id: &str,
        option_id: &str,
        value: Option<&str>,
    ) -> Result<()> {
        dispatch!(self, write, |pool, q| {
            let mut tx = crate::begin_write!(pool);
            sqlx::query(&q(
                "DELETE FROM project_option WHERE project_id = ? AND option_id = ?",
            ))
            .bind(project_id)
            .bind(option_id)
            .execute(&mut *tx)
            .await?;
            if let Some(v) = value {
                sqlx::query(&q(
                    "INSERT INTO project_option (project_id, option_id, option_value) VALUES (?, ?, ?)",
                ))
                .bind(project_id)
                .bind(option_id)
                .bind(v)
                .execute(&mut *tx)
                .await?;
            }
            tx.commit().await?;
            Ok(())
        })
    }

    /// A project's tags, sorted.
    pub async fn list_project_tags(&self, project_id: &str) -> Result<Vec<String>> {
        dispatch!(self, read, |pool, q| {
            let rows = sqlx::query(&q(
                "SELECT name FROM project_tag WHERE project_id = ? ORDER BY name",
            ))
            .bind(project_id)
            .fetch_all(pool)
            .await?;
            rows.iter()
                .map(|r| r.try_get::<String, _>(0).map_err(Into::into))
                .collect()
        })
    }

    /// Replaces a project's tags.
    pub async fn set_project_tags(&self, project_id: &str, tags: &[String]) -> Result<()> {
        dispatch!(self, write, |pool, q| {
            let mut tx = crate::begin_write!(pool);
            sqlx::query(&q("DELETE FROM project_tag WHERE project_id = ?"))
                .bind(project_id)
                .execute(&mut *tx)
                .await?;
            for tag in tags {
                sqlx::query(&q(
                    "INSERT INTO project_tag (project_id, name) VALUES (?, ?)",
                ))
                .bind(project_id)
                .bind(tag)
                .execute(&mut *tx)
                .await?;
            }
            tx.commit().await?;
            Ok(())
        })
    }

    /// Removes one tag; false when the project did not have it.
    pub async fn delete_project_tag(&self, project_id: &str, tag: &str) -> Result<bool> {
        dispatch!(self, write, |pool, q| {
            let done = sqlx::query(&q(
                "DELETE FROM project_tag WHERE project_id = ? AND name = ?",
            ))
            .bind(project_id)
            .bind(tag)
            .execute(pool)
            .await?;
            Ok(done.rows_affected() > 0)
        })
    }
}
