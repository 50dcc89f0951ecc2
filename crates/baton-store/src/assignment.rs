//! Roles, implied roles and role assignments (project, domain and system).

use crate::{
    dispatch, Assignment, AssignmentType, Result, Role, Store, StoreError, SystemAssignment,
    NULL_DOMAIN_ID,
};

impl Store {
    /// PostgreSQL keeps `assignment.type` in Keystone's enum named `type`: read it as text and
    /// cast parameters to it.
    fn assignment_type_column(&self) -> &'static str {
        match self.dialect() {
            crate::Dialect::Postgres => "CAST(type AS TEXT)",
            _ => "type",
        }
    }

    pub(crate) fn assignment_type_param(&self) -> &'static str {
        match self.dialect() {
            crate::Dialect::Postgres => "CAST(? AS type)",
            _ => "?",
        }
    }

    pub async fn list_roles(&self) -> Result<Vec<Role>> {
        dispatch!(self, read, |pool, q| {
            let rows = sqlx::query(&q("SELECT id, name, domain_id, description FROM role"))
                .fetch_all(pool)
                .await?;
            let mut out = Vec::with_capacity(rows.len());
            for row in rows {
                let domain_id: String = row.try_get("domain_id")?;
                out.push(Role {
                    id: row.try_get("id")?,
                    name: row.try_get("name")?,
                    domain_id: (domain_id != NULL_DOMAIN_ID).then_some(domain_id),
                    description: row.try_get("description")?,
                });
            }
            Ok(out)
        })
    }

    /// `(prior_role_id, implied_role_id)` pairs.
    pub async fn list_implied_roles(&self) -> Result<Vec<(String, String)>> {
        dispatch!(self, read, |pool, q| {
            let rows = sqlx::query(&q(
                "SELECT prior_role_id, implied_role_id FROM implied_role",
            ))
            .fetch_all(pool)
            .await?;
            rows.iter()
                .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
                .collect()
        })
    }

    /// Assignments whose actor is one of `actor_ids` (a user and their groups).
    pub async fn list_assignments_for_actors(
        &self,
        actor_ids: &[String],
    ) -> Result<Vec<Assignment>> {
        if actor_ids.is_empty() {
            return Ok(Vec::new());
        }
        let marks = vec!["?"; actor_ids.len()].join(", ");
        let sql = format!(
            "SELECT {} AS type, actor_id, target_id, role_id, inherited FROM assignment WHERE actor_id IN ({marks})",
            self.assignment_type_column()
        );
        dispatch!(self, read, |pool, q| {
            let sql = q(&sql);
            let mut query = sqlx::query(&sql);
            for id in actor_ids {
                query = query.bind(id);
            }
            let rows = query.fetch_all(pool).await?;
            let mut out = Vec::with_capacity(rows.len());
            for row in rows {
                let kind: String = row.try_get("type")?;
                let kind = AssignmentType::parse(&kind).ok_or_else(|| {
                    StoreError::Schema(format!("unknown assignment type {kind:?}"))
                })?;
                out.push(Assignment {
                    kind,
                    actor_id: row.try_get("actor_id")?,
                    target_id: row.try_get("target_id")?,
                    role_id: row.try_get("role_id")?,
                    inherited: row.try_get("inherited")?,
                });
            }
            Ok(out)
        })
    }

    pub async fn list_system_assignments_for_actors(
        &self,
        actor_ids: &[String],
    ) -> Result<Vec<SystemAssignment>> {
        if actor_ids.is_empty() {
            return Ok(Vec::new());
        }
        let marks = vec!["?"; actor_ids.len()].join(", ");
        let sql = format!(
            "SELECT type, actor_id, role_id, inherited FROM system_assignment WHERE actor_id IN ({marks})"
        );
        dispatch!(self, read, |pool, q| {
            let sql = q(&sql);
            let mut query = sqlx::query(&sql);
            for id in actor_ids {
                query = query.bind(id);
            }
            let rows = query.fetch_all(pool).await?;
            let mut out = Vec::with_capacity(rows.len());
            for row in rows {
                let kind: String = row.try_get("type")?;
                out.push(SystemAssignment {
                    is_group: kind == "GroupSystem",
                    actor_id: row.try_get("actor_id")?,
                    role_id: row.try_get("role_id")?,
                    inherited: row.try_get("inherited")?,
                });
            }
            Ok(out)
        })
    }

    /// Grants a role; granting an existing assignment again is a no-op.
    pub async fn create_assignment(&self, a: &Assignment) -> Result<()> {
        dispatch!(self, write, |pool, q| {
            let mut tx = crate::begin_write!(pool);
            let probe = format!(
                "SELECT role_id FROM assignment WHERE type = {} AND actor_id = ? AND target_id = ? AND role_id = ? AND inherited = ?",
                self.assignment_type_param()
            );
            let exists = sqlx::query(&q(&probe))
                .bind(a.kind.as_str())
                .bind(&a.actor_id)
                .bind(&a.target_id)
                .bind(&a.role_id)
                .bind(a.inherited)
                .fetch_optional(&mut *tx)
                .await?;
            if exists.is_none() {
                let insert = format!(
                    "INSERT INTO assignment (type, actor_id, target_id, role_id, inherited) VALUES ({}, ?, ?, ?, ?)",
                    self.assignment_type_param()
                );
                sqlx::query(&q(&insert))
                    .bind(a.kind.as_str())
                    .bind(&a.actor_id)
                    .bind(&a.target_id)
                    .bind(&a.role_id)
                    .bind(a.inherited)
                    .execute(&mut *tx)
                    .await?;
            }
            tx.commit().await?;
            Ok(())
        })
    }

    pub async fn delete_assignment(&self, a: &Assignment) -> Result<bool> {
        dispatch!(self, write, |pool, q| {
            let sql = format!(
                "DELETE FROM assignment WHERE type = {} AND actor_id = ? AND target_id = ? AND role_id = ? AND inherited = ?",
                self.assignment_type_param()
            );
            let done = sqlx::query(&q(&sql))
                .bind(a.kind.as_str())
                .bind(&a.actor_id)
                .bind(&a.target_id)
                .bind(&a.role_id)
                .bind(a.inherited)
                .execute(pool)
                .await?;
            Ok(done.rows_affected() > 0)
        })
    }
}
