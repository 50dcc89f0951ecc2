//! `bootstrap`: hashes the bootstrap password the configured way and asks the store to make the
//! first domain, project, admin user, roles and identity endpoints exist.

use baton_config::IdentityConfig;
use baton_store::{BootstrapReport, BootstrapSpec, Store};

use crate::password;

/// The `keystone-manage bootstrap` options.
#[derive(Debug, Clone)]
pub struct BootstrapOptions {
    pub password: String,
    pub username: String,
    pub project_name: Option<String>,
    pub role_name: String,
    pub service_name: Option<String>,
    pub region_id: Option<String>,
    pub public_url: Option<String>,
    pub internal_url: Option<String>,
    pub admin_url: Option<String>,
}

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
