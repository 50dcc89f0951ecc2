//! `bootstrap`: the first domain, project, admin user, default roles and identity endpoint, in
//! one transaction so that concurrent or repeated runs converge on the same rows.

use chrono::NaiveDateTime;

use crate::{
    dispatch, new_id, Dialect, Result, Store, TimestampRepr as _, NULL_DOMAIN_ID, ROOT_DOMAIN_ID,
};

/// What `bootstrap` should make sure exists.
#[derive(Clone)]
pub struct BootstrapSpec {
    /// The domain of the admin user and the bootstrap project (`[identity] default_domain_id`).
    pub default_domain_id: String,
    /// The admin user's name (`--bootstrap-username`).
    pub username: String,
    /// A hash of the bootstrap password, stored when the user is created or when
    /// `reset_password` is set (the caller found the stored password differs).
    pub password_hash: String,
    /// Give an existing admin user the bootstrap password again.
    pub reset_password: bool,
    /// The project the admin user gets the admin role on (`--bootstrap-project-name`), if any.
    pub project_name: Option<String>,
    /// The admin role's name (`--bootstrap-role-name`); it implies manager, member and reader.
    pub role_name: String,
    /// The identity service's name in the catalog; without it no service or endpoint is made.
    pub service_name: Option<String>,
    /// The region of the identity endpoints, created if missing.
    pub region_id: Option<String>,
    /// The identity endpoint for users (`--bootstrap-public-url`).
    pub public_url: Option<String>,
    /// The identity endpoint for services inside the cloud (`--bootstrap-internal-url`).
    pub internal_url: Option<String>,
    /// The admin endpoint (`--bootstrap-admin-url`).
    pub admin_url: Option<String>,
    /// The creation time stamped on new rows.
    pub now: NaiveDateTime,
}

/// What `bootstrap` found and did; `created` lists human-readable lines for the operator.
#[derive(Debug, Clone, Default)]
pub struct BootstrapReport {
    /// The admin user's id.
    pub user_id: String,
    /// The bootstrap project's id, when one was named.
    pub project_id: Option<String>,
    /// The admin role's id.
    pub admin_role_id: String,
    /// What was created or changed, one line each; empty when everything was in place.
    pub created: Vec<String>,
}

/// Keystone's default roles and the chain of implications among them.
const DEFAULT_ROLES: [&str; 4] = ["reader", "member", "manager", "service"];

// Each step of `bootstrap` is a macro, like `insert_password!`: it runs inside `dispatch!` on
// the transaction of whichever backend is in use. `$q` adapts query text to the dialect and
// `$report` collects what was created.

/// The root of the domain tree, then the default domain; gives the default domain's id.
macro_rules! ensure_default_domain {
    ($tx:ident, $q:ident, $spec:expr, $report:expr) => {{
        let root = sqlx::query(&$q("SELECT id FROM project WHERE id = ?"))
            .bind(ROOT_DOMAIN_ID)
            .fetch_optional(&mut *$tx)
            .await?;
        if root.is_none() {
            sqlx::query(&$q("INSERT INTO project (id, name, extra, description, enabled, domain_id, parent_id, is_domain) VALUES (?, ?, '{}', '', ?, ?, NULL, ?)"))
                .bind(ROOT_DOMAIN_ID).bind(ROOT_DOMAIN_ID).bind(false).bind(ROOT_DOMAIN_ID).bind(true)
                .execute(&mut *$tx).await?;
        }
        let domain_id = $spec.default_domain_id.clone();
        let domain = sqlx::query(&$q("SELECT id FROM project WHERE id = ?"))
            .bind(&domain_id)
            .fetch_optional(&mut *$tx)
            .await?;
        if domain.is_none() {
            sqlx::query(&$q("INSERT INTO project (id, name, extra, description, enabled, domain_id, parent_id, is_domain) VALUES (?, ?, '{}', ?, ?, ?, NULL, ?)"))
                .bind(&domain_id).bind("Default").bind("The default domain").bind(true).bind(ROOT_DOMAIN_ID).bind(true)
                .execute(&mut *$tx).await?;
            $report.created.push(format!("domain Default ({domain_id})"));
        }
        domain_id
    }};
}

/// The bootstrap project in the default domain, when one is named; its id goes to the report.
macro_rules! ensure_project {
    ($tx:ident, $q:ident, $spec:expr, $domain_id:expr, $report:expr) => {
        if let Some(project_name) = &$spec.project_name {
            let found = sqlx::query(&$q(
                "SELECT id FROM project WHERE name = ? AND domain_id = ?",
            ))
            .bind(project_name)
            .bind($domain_id)
            .fetch_optional(&mut *$tx)
            .await?;
            let id = match found {
                Some(row) => row.try_get::<String, _>(0)?,
                None => {
                    let id = new_id();
                    sqlx::query(&$q("INSERT INTO project (id, name, extra, description, enabled, domain_id, parent_id, is_domain) VALUES (?, ?, '{}', ?, ?, ?, ?, ?)"))
                        .bind(&id).bind(project_name).bind("Bootstrap project for initializing the cloud.")
                        .bind(true).bind($domain_id).bind($domain_id).bind(false)
                        .execute(&mut *$tx).await?;
                    $report
                        .created
                        .push(format!("project {project_name} ({id})"));
                    id
                }
            };
            $report.project_id = Some(id);
        }
    };
}

/// Roles: the default set plus the admin role, immutable like Keystone's, with
/// admin -> manager -> member -> reader. Gives the admin role's id.
macro_rules! ensure_roles {
    ($tx:ident, $q:ident, $spec:expr, $report:expr) => {{
        let mut role_ids = std::collections::HashMap::new();
        let mut names: Vec<&str> = DEFAULT_ROLES.to_vec();
        names.push($spec.role_name.as_str());
        for name in names {
            if role_ids.contains_key(name) {
                continue;
            }
            let found = sqlx::query(&$q("SELECT id FROM role WHERE name = ? AND domain_id = ?"))
                .bind(name)
                .bind(NULL_DOMAIN_ID)
                .fetch_optional(&mut *$tx)
                .await?;
            let id = match found {
                Some(row) => row.try_get::<String, _>(0)?,
                None => {
                    let id = new_id();
                    sqlx::query(&$q(
                        "INSERT INTO role (id, name, extra, domain_id) VALUES (?, ?, '{}', ?)",
                    ))
                    .bind(&id)
                    .bind(name)
                    .bind(NULL_DOMAIN_ID)
                    .execute(&mut *$tx)
                    .await?;
                    sqlx::query(&$q("INSERT INTO role_option (role_id, option_id, option_value) VALUES (?, 'IMMU', 'true')"))
                        .bind(&id)
                        .execute(&mut *$tx).await?;
                    $report.created.push(format!("role {name} ({id})"));
                    id
                }
            };
            role_ids.insert(name.to_string(), id);
        }
        for (prior, implied) in [
            ($spec.role_name.as_str(), "manager"),
            ("manager", "member"),
            ("member", "reader"),
        ] {
            if prior == implied {
                continue;
            }
            let (p, i) = (&role_ids[prior], &role_ids[implied]);
            let found = sqlx::query(&$q("SELECT prior_role_id FROM implied_role WHERE prior_role_id = ? AND implied_role_id = ?"))
                .bind(p).bind(i).fetch_optional(&mut *$tx).await?;
            if found.is_none() {
                sqlx::query(&$q(
                    "INSERT INTO implied_role (prior_role_id, implied_role_id) VALUES (?, ?)",
                ))
                .bind(p)
                .bind(i)
                .execute(&mut *$tx)
                .await?;
                $report
                    .created
                    .push(format!("implied role {prior} -> {implied}"));
            }
        }
        role_ids[$spec.role_name.as_str()].clone()
    }};
}

/// The admin user: created, or re-enabled and given the bootstrap password again. Gives its id.
macro_rules! ensure_admin_user {
    ($tx:ident, $q:ident, $pool:ident, $spec:expr, $domain_id:expr, $report:expr) => {{
        let found = sqlx::query(&$q("SELECT u.id, u.enabled FROM \"user\" u JOIN local_user lu ON lu.user_id = u.id WHERE lu.name = ? AND lu.domain_id = ?"))
            .bind(&$spec.username).bind($domain_id)
            .fetch_optional(&mut *$tx).await?;
        match found {
            Some(row) => {
                let id: String = row.try_get(0)?;
                let enabled: Option<bool> = row.try_get(1)?;
                if enabled != Some(true) {
                    sqlx::query(&$q("UPDATE \"user\" SET enabled = ? WHERE id = ?"))
                        .bind(true)
                        .bind(&id)
                        .execute(&mut *$tx)
                        .await?;
                    $report
                        .created
                        .push(format!("re-enabled user {}", $spec.username));
                }
                if $spec.reset_password {
                    crate::identity::insert_password!(
                        $tx,
                        $q,
                        $pool,
                        &id,
                        &$spec.password_hash,
                        $spec.now
                    );
                    $report
                        .created
                        .push(format!("reset the password of user {}", $spec.username));
                }
                id
            }
            None => {
                let id = new_id();
                sqlx::query(&$q("INSERT INTO \"user\" (id, extra, enabled, default_project_id, created_at, domain_id) VALUES (?, '{}', ?, NULL, ?, ?)"))
                    .bind(&id).bind(true).bind($pool.ts($spec.now)).bind($domain_id)
                    .execute(&mut *$tx).await?;
                sqlx::query(&$q("INSERT INTO local_user (user_id, domain_id, name, failed_auth_count) VALUES (?, ?, ?, 0)"))
                    .bind(&id).bind($domain_id).bind(&$spec.username)
                    .execute(&mut *$tx).await?;
                crate::identity::insert_password!(
                    $tx,
                    $q,
                    $pool,
                    &id,
                    &$spec.password_hash,
                    $spec.now
                );
                $report
                    .created
                    .push(format!("user {} ({id})", $spec.username));
                id
            }
        }
    }};
}

/// The admin role for the admin user on the bootstrap project and on the system.
macro_rules! ensure_admin_grants {
    ($store:expr, $tx:ident, $q:ident, $spec:expr, $user_id:expr, $admin_role:expr, $report:expr) => {
        if let Some(project_id) = &$report.project_id {
            let probe = format!("SELECT role_id FROM assignment WHERE type = {} AND actor_id = ? AND target_id = ? AND role_id = ? AND inherited = ?", $store.assignment_type_param());
            let found = sqlx::query(&$q(&probe))
                .bind("UserProject")
                .bind($user_id)
                .bind(project_id)
                .bind($admin_role)
                .bind(false)
                .fetch_optional(&mut *$tx)
                .await?;
            if found.is_none() {
                let insert = format!("INSERT INTO assignment (type, actor_id, target_id, role_id, inherited) VALUES ({}, ?, ?, ?, ?)", $store.assignment_type_param());
                sqlx::query(&$q(&insert))
                    .bind("UserProject")
                    .bind($user_id)
                    .bind(project_id)
                    .bind($admin_role)
                    .bind(false)
                    .execute(&mut *$tx)
                    .await?;
                $report.created.push(format!(
                    "role {} for user {} on project",
                    $spec.role_name, $spec.username
                ));
            }
        }
        let found = sqlx::query(&$q("SELECT role_id FROM system_assignment WHERE type = 'UserSystem' AND actor_id = ? AND target_id = 'system' AND role_id = ?"))
            .bind($user_id).bind($admin_role)
            .fetch_optional(&mut *$tx).await?;
        if found.is_none() {
            sqlx::query(&$q("INSERT INTO system_assignment (type, actor_id, target_id, role_id, inherited) VALUES ('UserSystem', ?, 'system', ?, ?)"))
                .bind($user_id).bind($admin_role).bind(false)
                .execute(&mut *$tx).await?;
            $report.created.push(format!(
                "role {} for user {} on the system",
                $spec.role_name, $spec.username
            ));
        }
    };
}

/// The region, when one is named.
macro_rules! ensure_region {
    ($tx:ident, $q:ident, $spec:expr, $report:expr) => {
        if let Some(region_id) = &$spec.region_id {
            let found = sqlx::query(&$q("SELECT id FROM region WHERE id = ?"))
                .bind(region_id)
                .fetch_optional(&mut *$tx)
                .await?;
            if found.is_none() {
                sqlx::query(&$q("INSERT INTO region (id, description, parent_region_id, extra) VALUES (?, '', NULL, '{}')"))
                    .bind(region_id).execute(&mut *$tx).await?;
                $report.created.push(format!("region {region_id}"));
            }
        }
    };
}

/// The identity service of that name (found by type and name, else created); gives its id.
macro_rules! ensure_identity_service {
    ($tx:ident, $q:ident, $service_name:expr, $report:expr) => {{
        let rows = sqlx::query(&$q("SELECT id, extra FROM service WHERE type = ?"))
            .bind("identity")
            .fetch_all(&mut *$tx)
            .await?;
        let mut service_id = None;
        for row in rows {
            let extra: Option<String> = row.try_get(1)?;
            let name = extra
                .as_deref()
                .and_then(|e| serde_json::from_str::<serde_json::Value>(e).ok())
                .and_then(|v| v.get("name").and_then(|n| n.as_str()).map(str::to_string));
            if name.as_deref() == Some($service_name.as_str()) {
                service_id = Some(row.try_get::<String, _>(0)?);
            }
        }
        match service_id {
            Some(id) => id,
            None => {
                let id = new_id();
                let extra = serde_json::json!({ "name": $service_name }).to_string();
                sqlx::query(&$q("INSERT INTO service (id, type, enabled, extra) VALUES (?, 'identity', ?, ?)"))
                    .bind(&id).bind(true).bind(&extra)
                    .execute(&mut *$tx).await?;
                $report
                    .created
                    .push(format!("service {} ({id})", $service_name));
                id
            }
        }
    }};
}

/// The identity service's public, internal and admin endpoints in the region: created, or
/// their URL brought to the one given.
macro_rules! ensure_identity_endpoints {
    ($tx:ident, $q:ident, $spec:expr, $service_id:expr, $report:expr) => {
        for (interface, url) in [
            ("public", &$spec.public_url),
            ("internal", &$spec.internal_url),
            ("admin", &$spec.admin_url),
        ] {
            let Some(url) = url else { continue };
            let found = sqlx::query(&$q("SELECT id, url FROM endpoint WHERE service_id = ? AND interface = ? AND (region_id = ? OR (region_id IS NULL AND ? IS NULL))"))
                .bind($service_id).bind(interface).bind(&$spec.region_id).bind(&$spec.region_id)
                .fetch_optional(&mut *$tx).await?;
            match found {
                Some(row) => {
                    let old: String = row.try_get(1)?;
                    if &old != url {
                        let id: String = row.try_get(0)?;
                        sqlx::query(&$q("UPDATE endpoint SET url = ? WHERE id = ?"))
                            .bind(url)
                            .bind(&id)
                            .execute(&mut *$tx)
                            .await?;
                        $report
                            .created
                            .push(format!("{interface} endpoint URL changed to {url}"));
                    }
                }
                None => {
                    let id = new_id();
                    sqlx::query(&$q("INSERT INTO endpoint (id, legacy_endpoint_id, interface, service_id, url, extra, enabled, region_id) VALUES (?, NULL, ?, ?, ?, '{}', ?, ?)"))
                        .bind(&id).bind(interface).bind($service_id).bind(url).bind(true).bind(&$spec.region_id)
                        .execute(&mut *$tx).await?;
                    $report.created.push(format!("{interface} endpoint {url}"));
                }
            }
        }
    };
}

impl Store {
    /// Makes sure the first domain, project, admin user, default roles and identity endpoints
    /// exist (`keystone-manage bootstrap`), creating only what is missing.
    pub async fn bootstrap(&self, spec: &BootstrapSpec) -> Result<BootstrapReport> {
        let mut report = BootstrapReport::default();
        dispatch!(self, write, |pool, q| {
            // MySQL commits DDL implicitly and has no transaction-scoped lock: a named lock on a
            // connection of its own serialises concurrent runs, and is released only after the
            // commit, so the next run sees everything this one wrote.
            let mut lock = crate::NamedLock::named_lock(pool, "baton_bootstrap").await?;
            let mut tx = crate::begin_write!(pool);
            match self.dialect() {
                Dialect::Postgres => {
                    sqlx::query("SELECT pg_advisory_xact_lock(7135209)")
                        .execute(&mut *tx)
                        .await?;
                }
                // MySQL: the named lock taken before the transaction (below).
                Dialect::MySql => {}
                Dialect::Sqlite => {}
            }
            let domain_id = ensure_default_domain!(tx, q, spec, report);
            ensure_project!(tx, q, spec, &domain_id, report);
            let admin_role = ensure_roles!(tx, q, spec, report);
            report.admin_role_id = admin_role.clone();
            let user_id = ensure_admin_user!(tx, q, pool, spec, &domain_id, report);
            report.user_id = user_id.clone();
            ensure_admin_grants!(self, tx, q, spec, &user_id, &admin_role, report);
            // Region, identity service and its endpoints.
            ensure_region!(tx, q, spec, report);
            if let Some(service_name) = &spec.service_name {
                let service_id = ensure_identity_service!(tx, q, service_name, report);
                ensure_identity_endpoints!(tx, q, spec, &service_id, report);
            }
            tx.commit().await?;
            if let Some(conn) = lock.as_mut() {
                sqlx::query("SELECT RELEASE_LOCK('baton_bootstrap')")
                    .execute(&mut **conn)
                    .await?;
            }
            Ok(report)
        })
    }
}
