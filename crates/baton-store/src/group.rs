//! Groups (`group` rows; members live in `user_group_membership`).

use crate::identity::or_conflict;
use crate::{dispatch, DeletedGroup, Group, Result, Store, StoreError};

const GROUP_COLUMNS: &str = "SELECT id, name, domain_id, description, extra FROM \"group\"";

macro_rules! group_from_row {
    ($row:expr) => {
        Group {
            id: $row.try_get("id")?,
            name: $row.try_get("name")?,
            domain_id: $row.try_get("domain_id")?,
            description: $row.try_get("description")?,
            extra: $row.try_get("extra")?,
        }
    };
}

/// Keystone's conflict detail for a group name taken in its domain.
fn duplicate_group(name: &str, domain_id: Option<&str>) -> StoreError {
    StoreError::Conflict(match domain_id {
        Some(d) => format!("group - Duplicate entry found with name {name} at domain ID {d}."),
        None => format!("group - Duplicate entry found with name {name}."),
    })
}

impl Store {
    /// A group by id.
    pub async fn get_group(&self, group_id: &str) -> Result<Option<Group>> {
        dispatch!(self, read, |pool, q| {
            let sql = format!("{GROUP_COLUMNS} WHERE id = ?");
            let row = sqlx::query(&q(&sql))
                .bind(group_id)
                .fetch_optional(pool)
                .await?;
            Ok(match row {
                Some(row) => Some(group_from_row!(row)),
                None => None,
            })
        })
    }

    /// Groups, optionally only those of a domain and/or with a name, in id order.
    pub async fn list_groups(
        &self,
        domain_id: Option<&str>,
        name: Option<&str>,
    ) -> Result<Vec<Group>> {
        let mut sql = format!("{GROUP_COLUMNS} WHERE 1 = 1");
        if domain_id.is_some() {
            sql.push_str(" AND domain_id = ?");
        }
        if name.is_some() {
            sql.push_str(" AND name = ?");
        }
        sql.push_str(" ORDER BY id");
        dispatch!(self, read, |pool, q| {
            let sql = q(&sql);
            let mut query = sqlx::query(&sql);
            if let Some(d) = domain_id {
                query = query.bind(d);
            }
            if let Some(n) = name {
                query = query.bind(n);
            }
            let rows = query.fetch_all(pool).await?;
            let mut out = Vec::with_capacity(rows.len());
            for row in rows {
                out.push(group_from_row!(row));
            }
            Ok(out)
        })
    }

    /// The groups a user is a direct member of, in id order.
    pub async fn list_groups_for_user(&self, user_id: &str) -> Result<Vec<Group>> {
        dispatch!(self, read, |pool, q| {
            let sql = "SELECT g.id, g.name, g.domain_id, g.description, g.extra FROM \"group\" g \
                       JOIN user_group_membership m ON m.group_id = g.id WHERE m.user_id = ? ORDER BY g.id";
            let rows = sqlx::query(&q(sql)).bind(user_id).fetch_all(pool).await?;
            let mut out = Vec::with_capacity(rows.len());
            for row in rows {
                out.push(group_from_row!(row));
            }
            Ok(out)
        })
    }

    /// Creates a group; `Conflict` when the name is taken in its domain.
    pub async fn create_group(&self, group: &Group) -> Result<()> {
        let conflict = || duplicate_group(&group.name, Some(&group.domain_id));
        dispatch!(self, write, |pool, q| {
            let mut tx = crate::begin_write!(pool);
            let taken = sqlx::query(&q(
                "SELECT id FROM \"group\" WHERE domain_id = ? AND name = ?",
            ))
            .bind(&group.domain_id)
            .bind(&group.name)
            .fetch_optional(&mut *tx)
            .await?;
            if taken.is_some() {
                return Err(conflict());
            }
            sqlx::query(&q(
                "INSERT INTO \"group\" (id, domain_id, name, description, extra) VALUES (?, ?, ?, ?, ?)",
            ))
            .bind(&group.id)
            .bind(&group.domain_id)
            .bind(&group.name)
            .bind(&group.description)
            .bind(group.extra.as_deref().unwrap_or("{}"))
            .execute(&mut *tx)
            .await
            .map_err(|e| or_conflict(e, conflict))?;
            tx.commit().await?;
            Ok(())
        })
    }

    /// Writes a group's name, description and extra; `NotFound` for an unknown group,
    /// `Conflict` when the name is taken by another group of the domain.
    pub async fn update_group(&self, group: &Group) -> Result<()> {
        let conflict = || duplicate_group(&group.name, None);
        dispatch!(self, write, |pool, q| {
            let mut tx = crate::begin_write!(pool);
            let taken = sqlx::query(&q(
                "SELECT id FROM \"group\" WHERE domain_id = ? AND name = ? AND id <> ?",
            ))
            .bind(&group.domain_id)
            .bind(&group.name)
            .bind(&group.id)
            .fetch_optional(&mut *tx)
            .await?;
            if taken.is_some() {
                return Err(conflict());
            }
            let done = sqlx::query(&q(
                "UPDATE \"group\" SET name = ?, description = ?, extra = ? WHERE id = ?",
            ))
            .bind(&group.name)
            .bind(&group.description)
            .bind(group.extra.as_deref().unwrap_or("{}"))
            .bind(&group.id)
            .execute(&mut *tx)
            .await
            .map_err(|e| or_conflict(e, conflict))?;
            // MySQL counts changed rows, not matched ones: look again before calling it missing.
            if done.rows_affected() == 0 {
                let exists = sqlx::query(&q("SELECT id FROM \"group\" WHERE id = ?"))
                    .bind(&group.id)
                    .fetch_optional(&mut *tx)
                    .await?;
                if exists.is_none() {
                    return Err(StoreError::NotFound {
                        kind: "group",
                        id: group.id.clone(),
                    });
                }
            }
            tx.commit().await?;
            Ok(())
        })
    }

    /// Deletes a group with its memberships, its role assignments (project, domain, system)
    /// and its id mapping; `None` when there was no such group.
    pub async fn delete_group(&self, group_id: &str) -> Result<Option<DeletedGroup>> {
        dispatch!(self, write, |pool, q| {
            let mut tx = crate::begin_write!(pool);
            let exists = sqlx::query(&q("SELECT id FROM \"group\" WHERE id = ?"))
                .bind(group_id)
                .fetch_optional(&mut *tx)
                .await?;
            if exists.is_none() {
                return Ok(None);
            }
            let members = sqlx::query(&q(
                "SELECT user_id FROM user_group_membership WHERE group_id = ? ORDER BY user_id",
            ))
            .bind(group_id)
            .fetch_all(&mut *tx)
            .await?;
            let member_ids = members
                .iter()
                .map(|r| r.try_get::<String, _>(0))
                .collect::<Result<Vec<_>, _>>()?;
            let project_domain = sqlx::query(&q(
                "DELETE FROM assignment WHERE actor_id = ? AND type IN ('GroupProject', 'GroupDomain')",
            ))
            .bind(group_id)
            .execute(&mut *tx)
            .await?;
            let system = sqlx::query(&q(
                "DELETE FROM system_assignment WHERE actor_id = ? AND type = 'GroupSystem'",
            ))
            .bind(group_id)
            .execute(&mut *tx)
            .await?;
            for sql in [
                "DELETE FROM user_group_membership WHERE group_id = ?",
                "DELETE FROM expiring_user_group_membership WHERE group_id = ?",
                "DELETE FROM id_mapping WHERE public_id = ?",
                "DELETE FROM \"group\" WHERE id = ?",
            ] {
                sqlx::query(&q(sql))
                    .bind(group_id)
                    .execute(&mut *tx)
                    .await?;
            }
            tx.commit().await?;
            Ok(Some(DeletedGroup {
                member_ids,
                had_assignments: project_domain.rows_affected() + system.rows_affected() > 0,
            }))
        })
    }
}
