//! `baton manage`: keystone-manage's verbs with the same flags and the same safety on re-runs.

use baton_config::IdentityConfig;
use baton_doctor::{rotate_decision, Retention};
use baton_server::bootstrap::{bootstrap, BootstrapOptions};
use baton_server::identity::credentials;
use baton_store::{Store, SyncOutcome};
use baton_token::{KeyRepository, SetupOutcome};
use clap::Subcommand;

#[derive(Subcommand)]
pub enum ManageCommand {
    /// Create Keystone's schema in the [database] connection (no-op when current).
    #[command(name = "db_sync")]
    DbSync,
    /// Create the Fernet key repository (keys 0 and 1) unless it exists.
    #[command(name = "fernet_setup")]
    FernetSetup(OwnerArgs),
    /// Stage a new key, promote the staged one, and prune beyond max_active_keys; refuses when
    /// --rotation-interval would prune keys of tokens still acceptable (unless --force).
    #[command(name = "fernet_rotate")]
    FernetRotate(RotateArgs),
    /// Create the credential key repository ([credential] key_repository, keys 0 and 1)
    /// unless it exists.
    #[command(name = "credential_setup")]
    CredentialSetup(OwnerArgs),
    /// Rotate the credential keys; refused while a credential is not encrypted with the
    /// primary key (run credential_migrate first), as keystone-manage does.
    #[command(name = "credential_rotate")]
    CredentialRotate(OwnerArgs),
    /// Re-encrypt with the primary key every credential encrypted with another key.
    #[command(name = "credential_migrate")]
    CredentialMigrate(OwnerArgs),
    /// Create the default domain, admin project/user/role, default roles and identity endpoints.
    Bootstrap(BootstrapArgs),
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
        ManageCommand::FernetSetup(_) => match key_repository(config).setup()? {
            SetupOutcome::Initialized { keys } => println!(
                "Fernet key repository {} created with keys {keys:?}.",
                config.fernet_tokens.key_repository.display()
            ),
            SetupOutcome::AlreadyInitialized => println!(
                "Fernet key repository {} is already initialized; nothing changed.",
                config.fernet_tokens.key_repository.display()
            ),
        },
        ManageCommand::FernetRotate(args) => {
            let check = Retention::from_config(config).check(args.rotation_interval);
            match rotate_decision(&check, args.force) {
                Ok(note) => {
                    if let Some(note) = note {
                        eprintln!("baton: {note}");
                    }
                }
                Err(refusal) => anyhow::bail!("{refusal}"),
            }
            let out = key_repository(config).rotate()?;
            println!(
                "Rotated: key {} is the new primary; keys now {:?}; removed {:?}.",
                out.new_primary, out.keys, out.removed
            );
        }
        ManageCommand::CredentialSetup(_) => credential_setup(config)?,
        ManageCommand::CredentialRotate(_) => credential_rotate(config).await?,
        ManageCommand::CredentialMigrate(_) => {
            let store = open_store(config).await?;
            let migrated = credentials::migrate(&store, &config.credential).await;
            store.close().await;
            let migrated = migrated.map_err(|e| anyhow::anyhow!("{e}"))?;
            println!(
                "credential_migrate: {migrated} credential(s) re-encrypted with the primary key."
            );
        }
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
