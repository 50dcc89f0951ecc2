//! Application credentials (`application_credential`, `application_credential_role`) and their
//! access rules (`access_rule`, `application_credential_access_rule`), in Keystone's rows: the
//! secret is stored only as a password hash, `expires_at` as Keystone's `DateTimeInt`
//! (microseconds since the epoch), and an access rule is one row per user, reused by every
//! credential that names it (by its id, or by the same service, path and method).

use chrono::NaiveDateTime;

use crate::identity::or_conflict;
use crate::{dispatch, int_of, Result, Store, StoreError};

/// An access rule as the API shows it: `id` is the rule's `external_id`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessRule {
    /// Its id (`access_rule.external_id`).
    pub id: String,
    /// The service type it allows.
    pub service: Option<String>,
    /// The path pattern.
    pub path: Option<String>,
    /// The HTTP method.
    pub method: Option<String>,
}

/// An application credential row with its role ids and access rules.
#[derive(Clone, PartialEq)]
pub struct ApplicationCredential {
    /// Its id.
    pub id: String,
    /// Unique per user.
    pub name: String,
    /// The secret's hash (`[identity] password_hash_algorithm`).
    pub secret_hash: String,
    /// Free text.
    pub description: Option<String>,
    /// The user it acts for.
    pub user_id: String,
    /// The project its tokens are scoped to.
    pub project_id: Option<String>,
    /// `all` for a system-scoped credential.
    pub system: Option<String>,
    /// When it stops working.
    pub expires_at: Option<NaiveDateTime>,
    /// Whether its tokens may create application credentials and trusts.
    pub unrestricted: bool,
    /// The roles its tokens carry (those the user still holds).
    pub role_ids: Vec<String>,
    /// `None` when the credential has no access rules (Keystone leaves the key out then).
    pub access_rules: Option<Vec<AccessRule>>,
}

impl std::fmt::Debug for ApplicationCredential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The hash is secret material: leave it out of logs.
        f.debug_struct("ApplicationCredential")
            .field("id", &self.id)
            .field("name", &self.name)
            .field("user_id", &self.user_id)
            .field("project_id", &self.project_id)
            .field("expires_at", &self.expires_at)
            .field("unrestricted", &self.unrestricted)
            .field("role_ids", &self.role_ids)
            .finish_non_exhaustive()
    }
}

/// Keystone's `DateTimeInt`: microseconds since the Unix epoch.
fn to_micros(t: NaiveDateTime) -> i64 {
    t.and_utc().timestamp_micros()
}

fn from_micros(v: i64) -> NaiveDateTime {
    chrono::DateTime::from_timestamp_micros(v)
        .unwrap_or_default()
        .naive_utc()
}

/// Keystone's conflict detail for a credential name the user already has.
fn duplicate_name(name: &str) -> StoreError {
    StoreError::Conflict(format!(
        "application_credential - Duplicate entry found with name {name}."
    ))
}

const CRED_COLUMNS: &str = "SELECT internal_id, id, name, secret_hash, description, user_id, \
    project_id, system, expires_at, unrestricted FROM application_credential";

macro_rules! cred_from_row {
    ($row:expr) => {
        (
            int_of!($row, "internal_id"),
            ApplicationCredential {
                id: $row.try_get("id")?,
                name: $row.try_get("name")?,
                secret_hash: $row.try_get("secret_hash")?,
                description: $row.try_get("description")?,
                user_id: $row.try_get("user_id")?,
                project_id: $row.try_get("project_id")?,
                system: $row.try_get("system")?,
                expires_at: $row
                    .try_get::<Option<i64>, _>("expires_at")?
                    .map(from_micros),
                unrestricted: $row
                    .try_get::<Option<bool>, _>("unrestricted")?
                    .unwrap_or(false),
                role_ids: Vec::new(),
                access_rules: None,
            },
        )
    };
}

macro_rules! rule_from_row {
    ($row:expr) => {
        AccessRule {
            id: $row
                .try_get::<Option<String>, _>("external_id")?
                .unwrap_or_default(),
            service: $row.try_get("service")?,
            path: $row.try_get("path")?,
            method: $row.try_get("method")?,
        }
    };
}

/// Reads the credentials a `WHERE` clause selects, each with its roles and access rules.
macro_rules! load_creds {
    ($pool:expr, $q:expr, $where:expr, $($bind:expr),*) => {{
        let sql = format!("{CRED_COLUMNS} {} ORDER BY internal_id", $where);
        let rows = sqlx::query(&$q(&sql))$(.bind($bind))*.fetch_all($pool).await?;
        let mut out = Vec::with_capacity(rows.len());
        for row in rows {
            let (internal, mut cred) = cred_from_row!(row);
            let roles = sqlx::query(&$q(
                "SELECT role_id FROM application_credential_role WHERE application_credential_id = ? ORDER BY role_id",
            ))
            .bind(internal as i32)
            .fetch_all($pool)
            .await?;
            for r in roles {
                cred.role_ids.push(r.try_get("role_id")?);
            }
            let rules = sqlx::query(&$q(
                "SELECT r.external_id, r.service, r.path, r.method FROM access_rule r \
                 JOIN application_credential_access_rule a ON a.access_rule_id = r.id \
                 WHERE a.application_credential_id = ? ORDER BY r.id",
            ))
            .bind(internal as i32)
            .fetch_all($pool)
            .await?;
            if !rules.is_empty() {
                let mut list = Vec::with_capacity(rules.len());
                for r in rules {
                    list.push(rule_from_row!(r));
                }
                cred.access_rules = Some(list);
            }
            out.push(cred);
        }
        out
    }};
}

/// The primary key of the access rule `rule` of `cred`'s user inside transaction `tx`: an
/// existing rule by id (which must be the user's, else `NotFound`), else the user's rule with
/// the same service, path and method, else a new row. A macro because each database backend
/// has its own transaction type.
macro_rules! access_rule_pk {
    ($tx:ident, $q:ident, $cred:ident, $rule:ident) => {{
        let tx = &mut $tx;
        let q = &$q;
        let cred = $cred;
        let rule = $rule;
        let by_id = sqlx::query(&q(
            "SELECT id, user_id FROM access_rule WHERE external_id = ?",
        ))
        .bind(&rule.id)
        .fetch_optional(&mut **tx)
        .await?;
        let mut rule_pk = None;
        if let Some(r) = by_id {
            let owner: Option<String> = r.try_get("user_id")?;
            if owner.as_deref() != Some(cred.user_id.as_str()) {
                return Err(StoreError::NotFound {
                    kind: "Access Rule",
                    id: rule.id.clone(),
                });
            }
            rule_pk = Some(int_of!(r, "id"));
        }
        if rule_pk.is_none() {
            let same = sqlx::query(&q(
                "SELECT id FROM access_rule WHERE user_id = ? AND service = ? AND path = ? AND method = ?",
            ))
            .bind(&cred.user_id)
            .bind(&rule.service)
            .bind(&rule.path)
            .bind(&rule.method)
            .fetch_optional(&mut **tx)
            .await?;
            if let Some(r) = same {
                rule_pk = Some(int_of!(r, "id"));
            }
        }
        match rule_pk {
            Some(pk) => pk,
            None => {
                sqlx::query(&q(
                    "INSERT INTO access_rule (external_id, user_id, service, path, method) VALUES (?, ?, ?, ?, ?)",
                ))
                .bind(&rule.id)
                .bind(&cred.user_id)
                .bind(&rule.service)
                .bind(&rule.path)
                .bind(&rule.method)
                .execute(&mut **tx)
                .await?;
                let r = sqlx::query(&q("SELECT id FROM access_rule WHERE external_id = ?"))
                    .bind(&rule.id)
                    .fetch_one(&mut **tx)
                    .await?;
                int_of!(r, "id")
            }
        }
    }};
}

impl Store {
    /// Stores a credential with its roles and access rules in one transaction. An access rule
    /// naming an existing rule id of another user is `NotFound` (as Keystone answers); one
    /// equal to a rule the user has (service, path, method) reuses it. `Conflict` when the user
    /// already has a credential of that name.
    pub async fn create_application_credential(&self, cred: &ApplicationCredential) -> Result<()> {
        let conflict = || duplicate_name(&cred.name);
        dispatch!(self, write, |pool, q| {
            let mut tx = crate::begin_write!(pool);
            let taken = sqlx::query(&q(
                "SELECT id FROM application_credential WHERE user_id = ? AND name = ?",
            ))
            .bind(&cred.user_id)
            .bind(&cred.name)
            .fetch_optional(&mut *tx)
            .await?;
            if taken.is_some() {
                return Err(conflict());
            }
            sqlx::query(&q(
                "INSERT INTO application_credential (id, name, secret_hash, description, user_id, \
                 project_id, system, expires_at, unrestricted) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            ))
            .bind(&cred.id)
            .bind(&cred.name)
            .bind(&cred.secret_hash)
            .bind(&cred.description)
            .bind(&cred.user_id)
            .bind(&cred.project_id)
            .bind(&cred.system)
            .bind(cred.expires_at.map(to_micros))
            .bind(cred.unrestricted)
            .execute(&mut *tx)
            .await
            .map_err(|e| or_conflict(e, conflict))?;
            let row = sqlx::query(&q(
                "SELECT internal_id FROM application_credential WHERE id = ?",
            ))
            .bind(&cred.id)
            .fetch_one(&mut *tx)
            .await?;
            let internal = int_of!(row, "internal_id") as i32;
            for role_id in &cred.role_ids {
                sqlx::query(&q(
                    "INSERT INTO application_credential_role (application_credential_id, role_id) VALUES (?, ?)",
                ))
                .bind(internal)
                .bind(role_id)
                .execute(&mut *tx)
                .await?;
            }
            for rule in cred.access_rules.iter().flatten() {
                let pk = access_rule_pk!(tx, q, cred, rule);
                sqlx::query(&q(
                    "INSERT INTO application_credential_access_rule (application_credential_id, access_rule_id) VALUES (?, ?)",
                ))
                .bind(internal)
                .bind(pk as i32)
                .execute(&mut *tx)
                .await?;
            }
            tx.commit().await?;
            Ok(())
        })
    }

    /// One credential by id.
    pub async fn get_application_credential(
        &self,
        id: &str,
    ) -> Result<Option<ApplicationCredential>> {
        dispatch!(self, read, |pool, q| {
            let mut creds = load_creds!(pool, q, "WHERE id = ?", id);
            Ok(creds.pop())
        })
    }

    /// A user's credentials, optionally only the one named `name`, in creation order.
    pub async fn list_application_credentials(
        &self,
        user_id: &str,
        name: Option<&str>,
    ) -> Result<Vec<ApplicationCredential>> {
        dispatch!(self, read, |pool, q| {
            Ok(match name {
                Some(n) => load_creds!(pool, q, "WHERE user_id = ? AND name = ?", user_id, n),
                None => load_creds!(pool, q, "WHERE user_id = ?", user_id),
            })
        })
    }

    /// Deletes a credential and its role and access-rule links (the rules stay, as in
    /// Keystone); false when there was none.
    pub async fn delete_application_credential(&self, id: &str) -> Result<bool> {
        dispatch!(self, write, |pool, q| {
            let mut tx = crate::begin_write!(pool);
            let Some(row) = sqlx::query(&q(
                "SELECT internal_id FROM application_credential WHERE id = ?",
            ))
            .bind(id)
            .fetch_optional(&mut *tx)
            .await?
            else {
                return Ok(false);
            };
            let internal = int_of!(row, "internal_id") as i32;
            // SQLite runs without foreign keys (as Keystone does): the links go explicitly.
            for table in [
                "application_credential_role",
                "application_credential_access_rule",
            ] {
                sqlx::query(&q(&format!(
                    "DELETE FROM {table} WHERE application_credential_id = ?"
                )))
                .bind(internal)
                .execute(&mut *tx)
                .await?;
            }
            sqlx::query(&q(
                "DELETE FROM application_credential WHERE internal_id = ?",
            ))
            .bind(internal)
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
            Ok(true)
        })
    }

    /// The ids of every credential of a user (of one project, when given) that
    /// [`Store::delete_application_credential`] would then remove.
    pub async fn application_credential_ids(
        &self,
        user_id: &str,
        project_id: Option<&str>,
    ) -> Result<Vec<String>> {
        dispatch!(self, read, |pool, q| {
            let rows = match project_id {
                Some(p) => sqlx::query(&q(
                    "SELECT id FROM application_credential WHERE user_id = ? AND project_id = ?",
                ))
                .bind(user_id)
                .bind(p)
                .fetch_all(pool)
                .await?,
                None => {
                    sqlx::query(&q(
                        "SELECT id FROM application_credential WHERE user_id = ?",
                    ))
                    .bind(user_id)
                    .fetch_all(pool)
                    .await?
                }
            };
            rows.iter()
                .map(|r| r.try_get::<String, _>("id").map_err(Into::into))
                .collect()
        })
    }

    /// A user's access rules, in creation order.
    pub async fn list_access_rules(&self, user_id: &str) -> Result<Vec<AccessRule>> {
        dispatch!(self, read, |pool, q| {
            let rows = sqlx::query(&q(
                "SELECT external_id, service, path, method FROM access_rule WHERE user_id = ? ORDER BY id",
            ))
            .bind(user_id)
            .fetch_all(pool)
            .await?;
            let mut out = Vec::with_capacity(rows.len());
            for r in rows {
                out.push(rule_from_row!(r));
            }
            Ok(out)
        })
    }

    /// One of the user's access rules by id.
    pub async fn get_access_rule(&self, id: &str, user_id: &str) -> Result<Option<AccessRule>> {
        dispatch!(self, read, |pool, q| {
            let row = sqlx::query(&q(
                "SELECT external_id, service, path, method FROM access_rule WHERE external_id = ? AND user_id = ?",
            ))
            .bind(id)
            .bind(user_id)
            .fetch_optional(pool)
            .await?;
            Ok(match row {
                Some(r) => Some(rule_from_row!(r)),
                None => None,
            })
        })
    }

    /// Deletes a user's access rule: `Ok(None)` when there is none, `Ok(Some(false))` when a
    /// credential still uses it (Keystone refuses that), `Ok(Some(true))` when deleted.
    pub async fn delete_access_rule(&self, id: &str, user_id: &str) -> Result<Option<bool>> {
        dispatch!(self, write, |pool, q| {
            let mut tx = crate::begin_write!(pool);
            let Some(row) = sqlx::query(&q(
                "SELECT id FROM access_rule WHERE external_id = ? AND user_id = ?",
            ))
            .bind(id)
            .bind(user_id)
            .fetch_optional(&mut *tx)
            .await?
            else {
                return Ok(None);
            };
            let pk = int_of!(row, "id") as i32;
            let used = sqlx::query(&q(
                "SELECT access_rule_id FROM application_credential_access_rule WHERE access_rule_id = ?",
            ))
            .bind(pk)
            .fetch_optional(&mut *tx)
            .await?;
            if used.is_some() {
                return Ok(Some(false));
            }
            sqlx::query(&q("DELETE FROM access_rule WHERE id = ?"))
                .bind(pk)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            Ok(Some(true))
        })
    }
}
