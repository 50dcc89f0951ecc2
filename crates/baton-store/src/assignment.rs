//! Roles, implied roles and role assignments (project, domain and system).

use std::collections::HashMap;

use crate::{
    dispatch, Assignment, AssignmentFilter, AssignmentType, NameRef, Result, Role, RoleDetail,
    Store, StoreError, SystemAssignment, NULL_DOMAIN_ID,
};

/// Ids per `IN (...)` list: well under every dialect's limit on bound parameters.
const IN_CHUNK: usize = 500;

/// An `Assignment` from a row of `type` (as text), `actor_id`, `target_id`, `role_id`,
/// `inherited` (a macro: each backend has its own row type).
macro_rules! assignment_from_row {
    ($row:expr) => {{
        let kind: String = $row.try_get("type")?;
        Assignment {
            kind: AssignmentType::parse(&kind)
                .ok_or_else(|| StoreError::Schema(format!("unknown assignment type {kind:?}")))?,
            actor_id: $row.try_get("actor_id")?,
            target_id: $row.try_get("target_id")?,
            role_id: $row.try_get("role_id")?,
            inherited: $row.try_get("inherited")?,
        }
    }};
}

/// A `SystemAssignment` from a row of `type`, `actor_id`, `role_id`, `inherited`.
macro_rules! system_assignment_from_row {
    ($row:expr) => {{
        let kind: String = $row.try_get("type")?;
        SystemAssignment {
            is_group: kind == "GroupSystem",
            actor_id: $row.try_get("actor_id")?,
            role_id: $row.try_get("role_id")?,
            inherited: $row.try_get("inherited")?,
        }
    }};
}

fn marks(n: usize) -> String {
    vec!["?"; n].join(", ")
}

fn role_from_parts(
    id: String,
    name: String,
    domain_id: String,
    description: Option<String>,
) -> Role {
    Role {
        id,
        name,
        domain_id: (domain_id != NULL_DOMAIN_ID).then_some(domain_id),
        description,
    }
}

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

    /// Every role, global and domain-specific.
    pub async fn list_roles(&self) -> Result<Vec<Role>> {
        dispatch!(self, read, |pool, q| {
            let rows = sqlx::query(&q("SELECT id, name, domain_id, description FROM role"))
                .fetch_all(pool)
                .await?;
            let mut out = Vec::with_capacity(rows.len());
            for row in rows {
                out.push(role_from_parts(
                    row.try_get("id")?,
                    row.try_get("name")?,
                    row.try_get("domain_id")?,
                    row.try_get("description")?,
                ));
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
                out.push(assignment_from_row!(row));
            }
            Ok(out)
        })
    }

    /// Project and domain assignments of a user and of every group the user is a member of, in
    /// one statement: the groups come from `user_group_membership`'s primary key inside the
    /// database rather than as thousands of bound ids (a user may be in thousands of groups).
    pub async fn list_assignments_of_user(&self, user_id: &str) -> Result<Vec<Assignment>> {
        let kind = self.assignment_type_column();
        let sql = format!(
            "SELECT {kind} AS type, actor_id, target_id, role_id, inherited FROM assignment \
             WHERE actor_id = ? \
             UNION ALL SELECT {kind} AS type, a.actor_id, a.target_id, a.role_id, a.inherited \
             FROM user_group_membership m JOIN assignment a ON a.actor_id = m.group_id \
             WHERE m.user_id = ?"
        );
        dispatch!(self, read, |pool, q| {
            let rows = sqlx::query(&q(&sql))
                .bind(user_id)
                .bind(user_id)
                .fetch_all(pool)
                .await?;
            let mut out = Vec::with_capacity(rows.len());
            for row in rows {
                out.push(assignment_from_row!(row));
            }
            Ok(out)
        })
    }

    /// The system role assignments of a user and of the user's groups, in one statement (as
    /// [`Store::list_assignments_of_user`]).
    pub async fn list_system_assignments_of_user(
        &self,
        user_id: &str,
    ) -> Result<Vec<SystemAssignment>> {
        dispatch!(self, read, |pool, q| {
            let rows = sqlx::query(&q(
                "SELECT type, actor_id, role_id, inherited FROM system_assignment WHERE actor_id = ? \
                 UNION ALL SELECT s.type, s.actor_id, s.role_id, s.inherited \
                 FROM user_group_membership m JOIN system_assignment s ON s.actor_id = m.group_id \
                 WHERE m.user_id = ?",
            ))
            .bind(user_id)
            .bind(user_id)
            .fetch_all(pool)
            .await?;
            let mut out = Vec::with_capacity(rows.len());
            for row in rows {
                out.push(system_assignment_from_row!(row));
            }
            Ok(out)
        })
    }

    /// The system role assignments of these users and groups (a user and the user's groups, to
    /// find a token's system roles).
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
                out.push(system_assignment_from_row!(row));
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

    /// Revokes a role assignment on a project or domain; false when there was none.
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

    /// Grants a role on the system (`system_assignment`, target `system`); granting an existing
    /// assignment again is a no-op.
    pub async fn create_system_assignment(&self, a: &SystemAssignment) -> Result<()> {
        let kind = if a.is_group {
            "GroupSystem"
        } else {
            "UserSystem"
        };
        dispatch!(self, write, |pool, q| {
            let mut tx = crate::begin_write!(pool);
            let exists = sqlx::query(&q(
                "SELECT role_id FROM system_assignment WHERE type = ? AND actor_id = ? AND target_id = 'system' AND role_id = ? AND inherited = ?",
            ))
            .bind(kind)
            .bind(&a.actor_id)
            .bind(&a.role_id)
            .bind(a.inherited)
            .fetch_optional(&mut *tx)
            .await?;
            if exists.is_none() {
                sqlx::query(&q(
                    "INSERT INTO system_assignment (type, actor_id, target_id, role_id, inherited) VALUES (?, ?, 'system', ?, ?)",
                ))
                .bind(kind)
                .bind(&a.actor_id)
                .bind(&a.role_id)
                .bind(a.inherited)
                .execute(&mut *tx)
                .await?;
            }
            tx.commit().await?;
            Ok(())
        })
    }

    /// Revokes a role assignment on the system; false when there was none.
    pub async fn delete_system_assignment(&self, a: &SystemAssignment) -> Result<bool> {
        let kind = if a.is_group {
            "GroupSystem"
        } else {
            "UserSystem"
        };
        dispatch!(self, write, |pool, q| {
            let done = sqlx::query(&q(
                "DELETE FROM system_assignment WHERE type = ? AND actor_id = ? AND target_id = 'system' AND role_id = ? AND inherited = ?",
            ))
            .bind(kind)
            .bind(&a.actor_id)
            .bind(&a.role_id)
            .bind(a.inherited)
            .execute(pool)
            .await?;
            Ok(done.rows_affected() > 0)
        })
    }

    /// Creates a role (global when `domain_id` is `None`); `Conflict` when the name is taken in
    /// that domain (or globally).
    pub async fn create_role(&self, role: &Role) -> Result<()> {
        self.insert_role(&RoleDetail {
            role: role.clone(),
            extra: None,
            options: Vec::new(),
        })
        .await
    }

    /// A role by id.
    pub async fn get_role(&self, id: &str) -> Result<Option<Role>> {
        Ok(self.get_role_detail(id).await?.map(|d| d.role))
    }

    /// A role with its `extra` object and resource options.
    pub async fn get_role_detail(&self, id: &str) -> Result<Option<RoleDetail>> {
        dispatch!(self, read, |pool, q| {
            let row = sqlx::query(&q(
                "SELECT id, name, domain_id, description, extra FROM role WHERE id = ?",
            ))
            .bind(id)
            .fetch_optional(pool)
            .await?;
            let Some(row) = row else { return Ok(None) };
            let options = sqlx::query(&q(
                "SELECT option_id, option_value FROM role_option WHERE role_id = ? ORDER BY option_id",
            ))
            .bind(id)
            .fetch_all(pool)
            .await?;
            let mut opts = Vec::with_capacity(options.len());
            for o in options {
                let value: Option<String> = o.try_get(1)?;
                opts.push((o.try_get(0)?, value.unwrap_or_else(|| "null".into())));
            }
            Ok(Some(RoleDetail {
                role: role_from_parts(
                    row.try_get("id")?,
                    row.try_get("name")?,
                    row.try_get("domain_id")?,
                    row.try_get("description")?,
                ),
                extra: row.try_get("extra")?,
                options: opts,
            }))
        })
    }

    /// Every role with its `extra` object and resource options (two queries).
    pub async fn list_role_details(&self) -> Result<Vec<RoleDetail>> {
        dispatch!(self, read, |pool, q| {
            let rows = sqlx::query(&q(
                "SELECT id, name, domain_id, description, extra FROM role",
            ))
            .fetch_all(pool)
            .await?;
            let option_rows = sqlx::query(&q(
                "SELECT role_id, option_id, option_value FROM role_option ORDER BY role_id, option_id",
            ))
            .fetch_all(pool)
            .await?;
            let mut options: HashMap<String, Vec<(String, String)>> = HashMap::new();
            for o in option_rows {
                let value: Option<String> = o.try_get(2)?;
                options
                    .entry(o.try_get(0)?)
                    .or_default()
                    .push((o.try_get(1)?, value.unwrap_or_else(|| "null".into())));
            }
            let mut out = Vec::with_capacity(rows.len());
            for row in rows {
                let id: String = row.try_get("id")?;
                out.push(RoleDetail {
                    options: options.remove(&id).unwrap_or_default(),
                    role: role_from_parts(
                        id,
                        row.try_get("name")?,
                        row.try_get("domain_id")?,
                        row.try_get("description")?,
                    ),
                    extra: row.try_get("extra")?,
                });
            }
            Ok(out)
        })
    }

    /// Inserts a role with its `extra` object and options; `Conflict` (Keystone's wording) when
    /// its name is taken in its domain, or among global roles.
    pub async fn insert_role(&self, d: &RoleDetail) -> Result<()> {
        let role = &d.role;
        let domain_id = role.domain_id.as_deref().unwrap_or(NULL_DOMAIN_ID);
        dispatch!(self, write, |pool, q| {
            let mut tx = crate::begin_write!(pool);
            let taken = sqlx::query(&q("SELECT id FROM role WHERE name = ? AND domain_id = ?"))
                .bind(&role.name)
                .bind(domain_id)
                .fetch_optional(&mut *tx)
                .await?;
            if taken.is_some() {
                return Err(role_name_conflict(role));
            }
            sqlx::query(&q(
                "INSERT INTO role (id, name, extra, domain_id, description) VALUES (?, ?, ?, ?, ?)",
            ))
            .bind(&role.id)
            .bind(&role.name)
            .bind(d.extra.as_deref().unwrap_or("{}"))
            .bind(domain_id)
            .bind(&role.description)
            .execute(&mut *tx)
            .await?;
            for (option_id, value) in &d.options {
                sqlx::query(&q(
                    "INSERT INTO role_option (role_id, option_id, option_value) VALUES (?, ?, ?)",
                ))
                .bind(&role.id)
                .bind(option_id)
                .bind(value)
                .execute(&mut *tx)
                .await?;
            }
            tx.commit().await?;
            Ok(())
        })
    }

    /// Writes a role's name, description, `extra` and options (the options are replaced as a
    /// whole); `NotFound` when it is gone, `Conflict` when the new name is taken.
    pub async fn update_role(&self, d: &RoleDetail) -> Result<()> {
        let role = &d.role;
        let domain_id = role.domain_id.as_deref().unwrap_or(NULL_DOMAIN_ID);
        dispatch!(self, write, |pool, q| {
            let mut tx = crate::begin_write!(pool);
            let exists = sqlx::query(&q("SELECT id FROM role WHERE id = ?"))
                .bind(&role.id)
                .fetch_optional(&mut *tx)
                .await?;
            if exists.is_none() {
                return Err(StoreError::NotFound {
                    kind: "role",
                    id: role.id.clone(),
                });
            }
            let taken = sqlx::query(&q(
                "SELECT id FROM role WHERE name = ? AND domain_id = ? AND id <> ?",
            ))
            .bind(&role.name)
            .bind(domain_id)
            .bind(&role.id)
            .fetch_optional(&mut *tx)
            .await?;
            if taken.is_some() {
                return Err(role_name_conflict(role));
            }
            sqlx::query(&q(
                "UPDATE role SET name = ?, description = ?, extra = ? WHERE id = ?",
            ))
            .bind(&role.name)
            .bind(&role.description)
            .bind(d.extra.as_deref().unwrap_or("{}"))
            .bind(&role.id)
            .execute(&mut *tx)
            .await?;
            sqlx::query(&q("DELETE FROM role_option WHERE role_id = ?"))
                .bind(&role.id)
                .execute(&mut *tx)
                .await?;
            for (option_id, value) in &d.options {
                sqlx::query(&q(
                    "INSERT INTO role_option (role_id, option_id, option_value) VALUES (?, ?, ?)",
                ))
                .bind(&role.id)
                .bind(option_id)
                .bind(value)
                .execute(&mut *tx)
                .await?;
            }
            tx.commit().await?;
            Ok(())
        })
    }

    /// Deletes a role with everything that names it: its project, domain and system
    /// assignments, the implications from and to it, and its options (children first, for the
    /// dialects that enforce foreign keys). `false` when there was no such role.
    pub async fn delete_role(&self, id: &str) -> Result<bool> {
        dispatch!(self, write, |pool, q| {
            let mut tx = crate::begin_write!(pool);
            for sql in [
                "DELETE FROM assignment WHERE role_id = ?",
                "DELETE FROM system_assignment WHERE role_id = ?",
                "DELETE FROM implied_role WHERE prior_role_id = ?",
                "DELETE FROM implied_role WHERE implied_role_id = ?",
                "DELETE FROM role_option WHERE role_id = ?",
            ] {
                sqlx::query(&q(sql)).bind(id).execute(&mut *tx).await?;
            }
            let done = sqlx::query(&q("DELETE FROM role WHERE id = ?"))
                .bind(id)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            Ok(done.rows_affected() > 0)
        })
    }

    /// Whether holding the prior role implies the other one.
    pub async fn implied_role_exists(
        &self,
        prior_role_id: &str,
        implied_role_id: &str,
    ) -> Result<bool> {
        dispatch!(self, read, |pool, q| {
            let row = sqlx::query(&q(
                "SELECT prior_role_id FROM implied_role WHERE prior_role_id = ? AND implied_role_id = ?",
            ))
            .bind(prior_role_id)
            .bind(implied_role_id)
            .fetch_optional(pool)
            .await?;
            Ok(row.is_some())
        })
    }

    /// Records that `prior_role_id` implies `implied_role_id`; `Conflict` when it already does.
    pub async fn create_implied_role(
        &self,
        prior_role_id: &str,
        implied_role_id: &str,
    ) -> Result<()> {
        dispatch!(self, write, |pool, q| {
            let mut tx = crate::begin_write!(pool);
            let exists = sqlx::query(&q(
                "SELECT prior_role_id FROM implied_role WHERE prior_role_id = ? AND implied_role_id = ?",
            ))
            .bind(prior_role_id)
            .bind(implied_role_id)
            .fetch_optional(&mut *tx)
            .await?;
            if exists.is_some() {
                return Err(StoreError::Conflict(
                    "implied_role - Duplicate entry.".into(),
                ));
            }
            sqlx::query(&q(
                "INSERT INTO implied_role (prior_role_id, implied_role_id) VALUES (?, ?)",
            ))
            .bind(prior_role_id)
            .bind(implied_role_id)
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
            Ok(())
        })
    }

    /// Removes an implication between two roles; false when there was none.
    pub async fn delete_implied_role(
        &self,
        prior_role_id: &str,
        implied_role_id: &str,
    ) -> Result<bool> {
        dispatch!(self, write, |pool, q| {
            let done = sqlx::query(&q(
                "DELETE FROM implied_role WHERE prior_role_id = ? AND implied_role_id = ?",
            ))
            .bind(prior_role_id)
            .bind(implied_role_id)
            .execute(pool)
            .await?;
            Ok(done.rows_affected() > 0)
        })
    }

    /// Whether this exact role assignment (actor, target, role, inherited) exists.
    pub async fn assignment_exists(&self, a: &Assignment) -> Result<bool> {
        let sql = format!(
            "SELECT role_id FROM assignment WHERE type = {} AND actor_id = ? AND target_id = ? AND role_id = ? AND inherited = ?",
            self.assignment_type_param()
        );
        dispatch!(self, read, |pool, q| {
            let row = sqlx::query(&q(&sql))
                .bind(a.kind.as_str())
                .bind(&a.actor_id)
                .bind(&a.target_id)
                .bind(&a.role_id)
                .bind(a.inherited)
                .fetch_optional(pool)
                .await?;
            Ok(row.is_some())
        })
    }

    /// Whether this exact system role assignment exists.
    pub async fn system_assignment_exists(&self, a: &SystemAssignment) -> Result<bool> {
        let kind = if a.is_group {
            "GroupSystem"
        } else {
            "UserSystem"
        };
        dispatch!(self, read, |pool, q| {
            let row = sqlx::query(&q(
                "SELECT role_id FROM system_assignment WHERE type = ? AND actor_id = ? AND target_id = 'system' AND role_id = ? AND inherited = ?",
            ))
            .bind(kind)
            .bind(&a.actor_id)
            .bind(&a.role_id)
            .bind(a.inherited)
            .fetch_optional(pool)
            .await?;
            Ok(row.is_some())
        })
    }

    /// The `assignment` rows matching `filter`, in one query per 500 actors x 500 targets.
    pub async fn list_assignments(&self, filter: &AssignmentFilter) -> Result<Vec<Assignment>> {
        let actor_chunks: Vec<Option<&[String]>> = match &filter.actor_ids {
            Some(ids) if ids.is_empty() => return Ok(Vec::new()),
            Some(ids) => ids.chunks(IN_CHUNK).map(Some).collect(),
            None => vec![None],
        };
        let target_chunks: Vec<Option<&[String]>> = match &filter.target_ids {
            Some(ids) if ids.is_empty() => return Ok(Vec::new()),
            Some(ids) => ids.chunks(IN_CHUNK).map(Some).collect(),
            None => vec![None],
        };
        if filter.kinds.as_ref().is_some_and(|k| k.is_empty()) {
            return Ok(Vec::new());
        }
        let type_col = self.assignment_type_column();
        let mut out = Vec::new();
        for actors in &actor_chunks {
            for targets in &target_chunks {
                let mut sql = format!(
                    "SELECT {type_col} AS type, actor_id, target_id, role_id, inherited FROM assignment WHERE 1 = 1"
                );
                let mut binds: Vec<&str> = Vec::new();
                if let Some(role_id) = &filter.role_id {
                    sql.push_str(" AND role_id = ?");
                    binds.push(role_id);
                }
                if let Some(actors) = actors {
                    sql.push_str(&format!(" AND actor_id IN ({})", marks(actors.len())));
                    binds.extend(actors.iter().map(String::as_str));
                }
                if let Some(targets) = targets {
                    sql.push_str(&format!(" AND target_id IN ({})", marks(targets.len())));
                    binds.extend(targets.iter().map(String::as_str));
                }
                if let Some(kinds) = &filter.kinds {
                    sql.push_str(&format!(" AND {type_col} IN ({})", marks(kinds.len())));
                    binds.extend(kinds.iter().map(|k| k.as_str()));
                }
                if filter.inherited.is_some() {
                    sql.push_str(" AND inherited = ?");
                }
                let rows = dispatch!(self, read, |pool, q| {
                    let sql = q(&sql);
                    let mut query = sqlx::query(&sql);
                    for b in &binds {
                        query = query.bind(*b);
                    }
                    if let Some(inherited) = filter.inherited {
                        query = query.bind(inherited);
                    }
                    let rows = query.fetch_all(pool).await?;
                    let mut part = Vec::with_capacity(rows.len());
                    for row in rows {
                        part.push(assignment_from_row!(row));
                    }
                    Ok::<_, StoreError>(part)
                })?;
                out.extend(rows);
            }
        }
        Ok(out)
    }

    /// System role assignments, of one actor and/or one actor kind (`is_group`) or all.
    pub async fn list_system_assignments(
        &self,
        actor_id: Option<&str>,
        is_group: Option<bool>,
    ) -> Result<Vec<SystemAssignment>> {
        let mut sql = String::from(
            "SELECT type, actor_id, role_id, inherited FROM system_assignment WHERE target_id = 'system'",
        );
        let mut binds: Vec<&str> = Vec::new();
        if let Some(actor_id) = actor_id {
            sql.push_str(" AND actor_id = ?");
            binds.push(actor_id);
        }
        if let Some(is_group) = is_group {
            sql.push_str(" AND type = ?");
            binds.push(if is_group {
                "GroupSystem"
            } else {
                "UserSystem"
            });
        }
        dispatch!(self, read, |pool, q| {
            let sql = q(&sql);
            let mut query = sqlx::query(&sql);
            for b in &binds {
                query = query.bind(*b);
            }
            let rows = query.fetch_all(pool).await?;
            let mut out = Vec::with_capacity(rows.len());
            for row in rows {
                out.push(system_assignment_from_row!(row));
            }
            Ok(out)
        })
    }

    /// Runs `select` (ending in `IN (`) once per chunk of `ids` and collects `id -> (name,
    /// domain_id)` from columns 0, 1 and 2.
    async fn names_by_id(&self, select: &str, ids: &[String]) -> Result<HashMap<String, NameRef>> {
        let mut unique: Vec<&String> = ids.iter().collect();
        unique.sort_unstable();
        unique.dedup();
        let mut out = HashMap::with_capacity(unique.len());
        for chunk in unique.chunks(IN_CHUNK) {
            let sql = format!("{select}{})", marks(chunk.len()));
            let rows = dispatch!(self, read, |pool, q| {
                let sql = q(&sql);
                let mut query = sqlx::query(&sql);
                for id in chunk {
                    query = query.bind(id.as_str());
                }
                let rows = query.fetch_all(pool).await?;
                let mut part = Vec::with_capacity(rows.len());
                for row in rows {
                    let id: String = row.try_get(0)?;
                    let name: Option<String> = row.try_get(1)?;
                    let domain_id: String = row.try_get(2)?;
                    part.push((
                        id,
                        NameRef {
                            name: name.unwrap_or_default(),
                            domain_id,
                        },
                    ));
                }
                Ok::<_, StoreError>(part)
            })?;
            out.extend(rows);
        }
        Ok(out)
    }

    /// Names and domains of users, by id (absent ids are left out).
    pub async fn user_names(&self, ids: &[String]) -> Result<HashMap<String, NameRef>> {
        self.names_by_id(
            "SELECT u.id, COALESCE(lu.name, nu.name) AS name, u.domain_id FROM \"user\" u \
             LEFT JOIN local_user lu ON lu.user_id = u.id \
             LEFT JOIN nonlocal_user nu ON nu.user_id = u.id WHERE u.id IN (",
            ids,
        )
        .await
    }

    /// Names and domains of groups, by id (absent ids are left out).
    pub async fn group_names(&self, ids: &[String]) -> Result<HashMap<String, NameRef>> {
        self.names_by_id(
            "SELECT id, name, domain_id FROM \"group\" WHERE id IN (",
            ids,
        )
        .await
    }

    /// Names and domains of projects and domains, by id (a domain's `domain_id` is the root).
    pub async fn project_names(&self, ids: &[String]) -> Result<HashMap<String, NameRef>> {
        self.names_by_id("SELECT id, name, domain_id FROM project WHERE id IN (", ids)
            .await
    }

    /// Direct members of each of `group_ids` (groups without members are absent).
    pub async fn group_members(
        &self,
        group_ids: &[String],
    ) -> Result<HashMap<String, Vec<String>>> {
        let mut unique: Vec<&String> = group_ids.iter().collect();
        unique.sort_unstable();
        unique.dedup();
        let mut out: HashMap<String, Vec<String>> = HashMap::new();
        for chunk in unique.chunks(IN_CHUNK) {
            let sql = format!(
                "SELECT group_id, user_id FROM user_group_membership WHERE group_id IN ({}) ORDER BY group_id, user_id",
                marks(chunk.len())
            );
            let rows = dispatch!(self, read, |pool, q| {
                let sql = q(&sql);
                let mut query = sqlx::query(&sql);
                for id in chunk {
                    query = query.bind(id.as_str());
                }
                let rows = query.fetch_all(pool).await?;
                let mut part = Vec::with_capacity(rows.len());
                for row in rows {
                    part.push((row.try_get::<String, _>(0)?, row.try_get::<String, _>(1)?));
                }
                Ok::<_, StoreError>(part)
            })?;
            for (g, u) in rows {
                out.entry(g).or_default().push(u);
            }
        }
        Ok(out)
    }
}

/// Keystone's wording: `role - Duplicate entry found with name X[ at domain ID D].`
fn role_name_conflict(role: &Role) -> StoreError {
    StoreError::Conflict(match &role.domain_id {
        Some(d) => format!(
            "role - Duplicate entry found with name {} at domain ID {d}.",
            role.name
        ),
        None => format!("role - Duplicate entry found with name {}.", role.name),
    })
}
