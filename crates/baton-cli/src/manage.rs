//! `baton manage`: keystone-manage's verbs with the same flags and the same safety on re-runs.

use baton_config::IdentityConfig;
use baton_config::KeyDistribution;
use baton_doctor::{rotate_decision, Retention};
use baton_server::bootstrap::{bootstrap, BootstrapOptions};
use baton_server::fleet;
use baton_server::fleet::manage::{Repository, SetupReport};
use baton_server::identity::credentials::{self, CredentialKeys};
use baton_store::{Store, SyncOutcome};
use baton_token::{KeyRepository, SetupOutcome};
use clap::Subcommand;

#[derive(Subcommand)]
pub enum ManageCommand {
    /// Create Keystone's schema in the [database] connection (no-op when current).
    #[command(name = "db_sync")]
    DbSync,
    /// Create the Fernet key repository (keys 0 and 1) unless it exists; with
    /// [fernet_tokens] key_distribution = database, the shared set in the database (importing
    /// a non-empty key_repository).
    #[command(name = "fernet_setup")]
    FernetSetup(OwnerArgs),
    /// Stage a new key, promote the staged one, and prune beyond max_active_keys; refuses when
    /// --rotation-interval would prune keys of tokens still acceptable (unless --force).
    #[command(name = "fernet_rotate")]
    FernetRotate(RotateArgs),
    /// Create the credential key repository ([credential] key_repository, keys 0 and 1)
    /// unless it exists (in the database with [credential] key_distribution = database).
    #[command(name = "credential_setup")]
    CredentialSetup(OwnerArgs),
    /// Rotate the credential keys; refused while a credential is not encrypted with the
    /// primary key (run credential_migrate first), as keystone-manage does.
    #[command(name = "credential_rotate")]
    CredentialRotate(OwnerArgs),
    /// Re-encrypt with the primary key every credential encrypted with another key.
    #[command(name = "credential_migrate")]
    CredentialMigrate(OwnerArgs),
    /// Write the Fernet token keys (from the database with key_distribution = database) to
    /// DIR as Keystone's numbered files, for Keystone nodes of a mixed fleet.
    #[command(name = "fernet_export")]
    FernetExport(ExportArgs),
    /// Create the default domain, admin project/user/role, default roles and identity endpoints.
    Bootstrap(BootstrapArgs),
}

#[derive(clap::Args)]
pub struct ExportArgs {
    /// The directory to write (created 0700 if missing; files 0600).
    dir: std::path::PathBuf,
    /// Export the credential keys instead of the token keys.
    #[arg(long)]
    credential: bool,
}

#[derive(clap::Args)]
pub struct OwnerArgs {
    /// Accepted for compatibility; Baton keeps the files owned by the user running it.
    #[arg(long = "keystone-user")]
    keystone_user: Option<String>,
    /// Accepted for compatibility; see --keystone-user.
    #[arg(long = "keystone-group")]
    keystone_group: Option<String>,
}

#[derive(clap::Args)]
pub struct RotateArgs {
    #[command(flatten)]
    owner: OwnerArgs,
    /// How often this command runs (e.g. 1d): checked against expiration +
    /// allow_expired_window and max_active_keys before any key is touched.
    #[arg(long, value_name = "DURATION", value_parser = rotation_interval)]
    rotation_interval: Option<std::time::Duration>,
    /// Rotate even when the schedule would make acceptable tokens undecryptable.
    #[arg(long)]
    force: bool,
}

fn rotation_interval(text: &str) -> Result<std::time::Duration, String> {
    match baton_config::parse_duration(text) {
        Ok(d) if d.is_zero() => Err("must be above 0".into()),
        Ok(d) => Ok(d),
        Err(e) => Err(e.to_string()),
    }
}

#[derive(clap::Args)]
pub struct BootstrapArgs {
    #[arg(long = "bootstrap-password", env = "OS_BOOTSTRAP_PASSWORD")]
    password: String,
    #[arg(long = "bootstrap-username", default_value = "admin")]
    username: String,
    #[arg(long = "bootstrap-project-name", default_value = "admin")]
    project_name: String,
    #[arg(long = "bootstrap-role-name", default_value = "admin")]
    role_name: String,
    #[arg(long = "bootstrap-service-name", default_value = "keystone")]
    service_name: String,
    #[arg(long = "bootstrap-region-id")]
    region_id: Option<String>,
    #[arg(long = "bootstrap-public-url")]
    public_url: Option<String>,
    #[arg(long = "bootstrap-internal-url")]
    internal_url: Option<String>,
    #[arg(long = "bootstrap-admin-url")]
    admin_url: Option<String>,
}

impl BootstrapArgs {
    pub fn options(&self) -> BootstrapOptions {
        BootstrapOptions {
            password: self.password.clone(),
            username: self.username.clone(),
            project_name: Some(self.project_name.clone()),
            role_name: self.role_name.clone(),
            service_name: Some(self.service_name.clone()),
            region_id: self.region_id.clone(),
            public_url: self.public_url.clone(),
            internal_url: self.internal_url.clone(),
            admin_url: self.admin_url.clone(),
        }
    }
}

async fn open_store(config: &IdentityConfig) -> anyhow::Result<Store> {
    let connection = config
        .database
        .connection
        .as_deref()
        .ok_or_else(|| anyhow::anyhow!("[database] connection is not set"))?;
    Ok(Store::connect(connection).await?)
}

fn key_repository(config: &IdentityConfig) -> KeyRepository {
    KeyRepository::new(
        &config.fernet_tokens.key_repository,
        config.fernet_tokens.max_active_keys as usize,
    )
}

fn credential_repository(config: &IdentityConfig) -> KeyRepository {
    KeyRepository::new(
        &config.credential.key_repository,
        config.credential.max_active_keys as usize,
    )
}

fn shared(config: &IdentityConfig, repository: Repository) -> bool {
    repository.options(config).2 == KeyDistribution::Database
}

/// `fernet_setup` / `credential_setup` on the set shared through the database.
async fn shared_setup(config: &IdentityConfig, repository: Repository) -> anyhow::Result<()> {
    let store = open_store(config).await?;
    let now = chrono::Utc::now().timestamp();
    let report = fleet::manage::setup(config, &store, repository, now).await;
    store.close().await;
    match report? {
        SetupReport::Created { imported, keys } => println!(
            "Shared {} key set stored in the database with keys {keys:?}{}.",
            repository.name(),
            if imported { ", imported from the key repository" } else { "" }
        ),
        SetupReport::AlreadyInitialized { version } => println!(
            "The database already holds the shared {} key set (version {version}); nothing changed.",
            repository.name()
        ),
    }
    Ok(())
}

/// `fernet_rotate` / `credential_rotate` on the set shared through the database.
async fn shared_rotate(
    config: &IdentityConfig,
    repository: Repository,
    force: bool,
) -> anyhow::Result<()> {
    let store = open_store(config).await?;
    let now = chrono::Utc::now().timestamp();
    let result = async {
        if repository == Repository::Credential {
            let keys = CredentialKeys::for_config(config, &store).await?;
            credentials::check_rotatable_with(&store, &keys).await?;
        }
        fleet::manage::rotate(config, &store, repository, now, force)
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))
    }
    .await;
    store.close().await;
    let report = result.map_err(|e| anyhow::anyhow!("{e}"))?;
    for note in &report.notes {
        eprintln!("baton: {note}");
    }
    let out = report.outcome;
    println!(
        "Rotated the shared {} keys (version {}): key {} is the new primary; keys now {:?}; removed {:?}.",
        repository.name(),
        report.version,
        out.new_primary,
        out.keys,
        out.removed
    );
    Ok(())
}

/// `baton manage fernet_export DIR`.
async fn export(config: &IdentityConfig, args: &ExportArgs) -> anyhow::Result<()> {
    let repository = if args.credential {
        Repository::Credential
    } else {
        Repository::FernetTokens
    };
    let store = open_store(config).await?;
    let written = fleet::manage::export(config, &store, repository, &args.dir).await;
    store.close().await;
    println!(
        "Wrote {} keys {:?} to {}.",
        repository.name(),
        written?,
        args.dir.display()
    );
    Ok(())
}

/// `keystone-manage credential_setup`.
fn credential_setup(config: &IdentityConfig) -> anyhow::Result<()> {
    match credential_repository(config).setup()? {
        SetupOutcome::Initialized { keys } => println!(
            "Credential key repository {} created with keys {keys:?}.",
            config.credential.key_repository.display()
        ),
        SetupOutcome::AlreadyInitialized => println!(
            "Credential key repository {} is already initialized; nothing changed.",
            config.credential.key_repository.display()
        ),
    }
    Ok(())
}

/// `keystone-manage credential_rotate`: only when every credential is on the primary key, so
/// that the key purged by the rotation encrypts nothing still stored.
async fn credential_rotate(config: &IdentityConfig) -> anyhow::Result<()> {
    if shared(config, Repository::Credential) {
        return shared_rotate(config, Repository::Credential, false).await;
    }
    let store = open_store(config).await?;
    let checked = credentials::check_rotatable(&store, &config.credential).await;
    store.close().await;
    checked.map_err(|e| anyhow::anyhow!("{e}"))?;
    let out = credential_repository(config).rotate()?;
    println!(
        "Rotated credential keys: key {} is the new primary; keys now {:?}; removed {:?}.",
        out.new_primary, out.keys, out.removed
    );
    Ok(())
}

/// `keystone-manage fernet_setup`, on the directory or the database's shared set.
async fn fernet_setup(config: &IdentityConfig) -> anyhow::Result<()> {
    if shared(config, Repository::FernetTokens) {
        return shared_setup(config, Repository::FernetTokens).await;
    }
    match key_repository(config).setup()? {
        SetupOutcome::Initialized { keys } => println!(
            "Fernet key repository {} created with keys {keys:?}.",
            config.fernet_tokens.key_repository.display()
        ),
        SetupOutcome::AlreadyInitialized => println!(
            "Fernet key repository {} is already initialized; nothing changed.",
            config.fernet_tokens.key_repository.display()
        ),
    }
    Ok(())
}

/// `keystone-manage fernet_rotate` with Baton's retention check first.
async fn fernet_rotate(config: &IdentityConfig, args: &RotateArgs) -> anyhow::Result<()> {
    let check = Retention::from_config(config).check(args.rotation_interval);
    match rotate_decision(&check, args.force) {
        Ok(note) => {
            if let Some(note) = note {
                eprintln!("baton: {note}");
            }
        }
        Err(refusal) => anyhow::bail!("{refusal}"),
    }
    if shared(config, Repository::FernetTokens) {
        return shared_rotate(config, Repository::FernetTokens, args.force).await;
    }
    let out = key_repository(config).rotate()?;
    println!(
        "Rotated: key {} is the new primary; keys now {:?}; removed {:?}.",
        out.new_primary, out.keys, out.removed
    );
    Ok(())
}

pub async fn run(config: &IdentityConfig, command: ManageCommand) -> anyhow::Result<()> {
    match command {
        ManageCommand::DbSync => {
            let store = open_store(config).await?;
            match store.db_sync().await? {
                SyncOutcome::Created => println!(
                    "Database {} now holds Keystone's schema.",
                    store.redacted_url()
                ),
                SyncOutcome::AlreadyCurrent => {
                    println!("Database {} is already current.", store.redacted_url())
                }
            }
            store.close().await;
        }
        ManageCommand::FernetSetup(_) => fernet_setup(config).await?,
        ManageCommand::FernetRotate(args) => fernet_rotate(config, &args).await?,
        ManageCommand::CredentialSetup(_) if shared(config, Repository::Credential) => {
            shared_setup(config, Repository::Credential).await?
        }
        ManageCommand::CredentialSetup(_) => credential_setup(config)?,
        ManageCommand::CredentialRotate(_) => credential_rotate(config).await?,
        ManageCommand::CredentialMigrate(_) => {
            let store = open_store(config).await?;
            let migrated = match CredentialKeys::for_config(config, &store).await {
                Ok(keys) => credentials::migrate_with(&store, &keys).await,
                Err(e) => Err(e),
            };
            store.close().await;
            let migrated = migrated.map_err(|e| anyhow::anyhow!("{e}"))?;
            println!(
                "credential_migrate: {migrated} credential(s) re-encrypted with the primary key."
            );
        }
        ManageCommand::FernetExport(args) => export(config, &args).await?,
        ManageCommand::Bootstrap(args) => {
            let store = open_store(config).await?;
            if !store.schema_is_current().await? {
                anyhow::bail!(
                    "database {} has no current schema: run `baton manage db_sync` first",
                    store.redacted_url()
                );
            }
            let report = bootstrap(config, &store, &args.options()).await?;
            if report.created.is_empty() {
                println!("Bootstrap: everything already exists; nothing changed.");
            }
            for line in &report.created {
                println!("Bootstrap: {line}");
            }
            store.close().await;
        }
    }
    Ok(())
}
