//! `bootstrap`: hashes the bootstrap password the configured way and asks the store to make the
//! first domain, project, admin user, roles and identity endpoints exist; [`initialize`] runs
//! `db_sync`, `fernet_setup` and `bootstrap` in a row for a new deployment.

use baton_config::IdentityConfig;
use baton_store::{BootstrapReport, BootstrapSpec, Store};
use baton_token::KeyRepository;

use crate::fleet::manage::Repository;
use crate::password;

/// The `keystone-manage bootstrap` options.
#[derive(Debug, Clone)]
pub struct BootstrapOptions {
    /// The admin user's password (`--bootstrap-password`).
    pub password: String,
    /// The admin user's name (`--bootstrap-username`, default `admin`).
    pub username: String,
    /// The project the admin user gets the admin role on (`--bootstrap-project-name`).
    pub project_name: Option<String>,
    /// The admin role's name (`--bootstrap-role-name`, default `admin`).
    pub role_name: String,
    /// The identity service's name in the catalog (`--bootstrap-service-name`).
    pub service_name: Option<String>,
    /// The region of the identity endpoints (`--bootstrap-region-id`).
    pub region_id: Option<String>,
    /// The identity endpoint users reach (`--bootstrap-public-url`).
    pub public_url: Option<String>,
    /// The identity endpoint services inside the cloud reach (`--bootstrap-internal-url`).
    pub internal_url: Option<String>,
    /// The admin endpoint (`--bootstrap-admin-url`), kept for clients that still look it up.
    pub admin_url: Option<String>,
}

impl BootstrapOptions {
    /// `keystone-manage bootstrap --bootstrap-password <password> --bootstrap-region-id
    /// RegionOne --bootstrap-public-url <base>/v3 --bootstrap-internal-url <base>/v3`: user,
    /// project and role `admin`, service `keystone`, no admin URL.
    pub fn admin(password: impl Into<String>, base_url: &str) -> BootstrapOptions {
        let v3 = format!("{}/v3", base_url.trim_end_matches('/'));
        BootstrapOptions {
            password: password.into(),
            username: "admin".into(),
            project_name: Some("admin".into()),
            role_name: "admin".into(),
            service_name: Some("keystone".into()),
            region_id: Some("RegionOne".into()),
            public_url: Some(v3.clone()),
            internal_url: Some(v3),
            admin_url: None,
        }
    }
}

/// A new deployment in one call, as an installer runs `keystone-manage db_sync`,
/// `fernet_setup` and `bootstrap`: the schema of `[database] connection`, the key repository of
/// `[fernet_tokens]` (in the database with `key_distribution = database`) and the bootstrap admin, roles and identity endpoints. Each step leaves
/// what already exists alone, so running it again is harmless. Everything else (projects,
/// users, grants, catalog) belongs to the admin API of the running server.
pub async fn initialize(
    config: &IdentityConfig,
    opts: &BootstrapOptions,
) -> anyhow::Result<BootstrapReport> {
    let connection = config.database.connection.as_deref().unwrap_or_default();
    let store = Store::connect(connection).await?;
    store.db_sync().await?;
    if config.fernet_tokens.key_distribution == baton_config::KeyDistribution::Database {
        let now = chrono::Utc::now().timestamp();
        crate::fleet::manage::setup(config, &store, Repository::FernetTokens, now).await?;
    } else {
        KeyRepository::new(
            &config.fernet_tokens.key_repository,
            config.fernet_tokens.max_active_keys as usize,
        )
        .setup()?;
    }
    let report = bootstrap(config, &store, opts).await;
    store.close().await;
    report
}

/// `keystone-manage bootstrap`: hashes the password with `[identity] password_hash_algorithm`
/// and makes the admin user, project, roles and identity endpoints exist in `store`; an
/// existing admin's password is rewritten only when it differs, so sessions survive a re-run.
pub async fn bootstrap(
    config: &IdentityConfig,
    store: &Store,
    opts: &BootstrapOptions,
) -> anyhow::Result<BootstrapReport> {
    let domain_id = config.identity.default_domain_id.clone();
    // Re-runs reset the password only when it differs, so that an unchanged re-run writes
    // nothing and existing sessions keep working.
    let existing = match store.find_user(&opts.username, &domain_id).await? {
        Some(u) => store.get_password(&u.id).await?,
        None => None,
    };
    let pw = opts.password.clone();
    let algorithm = config.identity.password_hash_algorithm;
    let rounds = config.identity.password_hash_rounds;
    let (hash, reset) = tokio::task::spawn_blocking(move || -> anyhow::Result<(String, bool)> {
        let matches = match &existing {
            Some(rec) => password::verify_password(&pw, &rec.hash).unwrap_or(false),
            None => false,
        };
        let hash = password::hash_password(&pw, algorithm, rounds)?;
        Ok((hash, existing.is_some() && !matches))
    })
    .await??;
    let spec = BootstrapSpec {
        default_domain_id: domain_id,
        username: opts.username.clone(),
        password_hash: hash,
        reset_password: reset,
        project_name: opts.project_name.clone(),
        role_name: opts.role_name.clone(),
        service_name: opts.service_name.clone(),
        region_id: opts.region_id.clone(),
        public_url: opts.public_url.clone(),
        internal_url: opts.internal_url.clone(),
        admin_url: opts.admin_url.clone(),
        now: chrono::Utc::now().naive_utc(),
    };
    Ok(store.bootstrap(&spec).await?)
}
