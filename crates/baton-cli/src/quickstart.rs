//! `baton quickstart`: one command from a fresh clone to a running identity server on the
//! embedded SQLite default, printing how to talk to it.

use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;

use baton_server::bootstrap::{bootstrap, BootstrapOptions};
use baton_store::Store;
use baton_token::KeyRepository;
use rand::RngCore;

#[derive(clap::Args)]
pub struct QuickstartArgs {
    /// Where the database, keys and generated configuration live.
    #[arg(long, default_value = ".baton", env = "BATON_DATA_DIR")]
    data_dir: PathBuf,
    /// Address to serve on.
    #[arg(long, default_value = "127.0.0.1:5000")]
    bind: std::net::SocketAddr,
    /// Set everything up, print the credentials and exit without serving.
    #[arg(long)]
    no_serve: bool,
}

fn generated_password() -> String {
    let mut bytes = [0u8; 18];
    rand::thread_rng().fill_bytes(&mut bytes);
    base64::Engine::encode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, bytes)
}

/// `keystone-manage fernet_setup` and `credential_setup` (credentials have their own keys).
fn setup_keys(config: &baton_config::IdentityConfig) -> anyhow::Result<()> {
    KeyRepository::new(
        &config.fernet_tokens.key_repository,
        config.fernet_tokens.max_active_keys as usize,
    )
    .setup()?;
    KeyRepository::new(
        &config.credential.key_repository,
        config.credential.max_active_keys as usize,
    )
    .setup()?;
    Ok(())
}

pub async fn run(args: QuickstartArgs) -> anyhow::Result<()> {
    std::fs::create_dir_all(&args.data_dir)
        .map_err(|e| anyhow::anyhow!("{}: {e}", args.data_dir.display()))?;
    let data_dir = std::fs::canonicalize(&args.data_dir)?;
    std::fs::set_permissions(&data_dir, std::fs::Permissions::from_mode(0o700))?;
    let conf_path = data_dir.join("keystone.conf");
    let url = format!("http://{}", args.bind);
    if !conf_path.exists() {
        let conf = format!(
            "# Written by `baton quickstart`; edit freely, it is read on every start.\n\
             [DEFAULT]\npublic_endpoint = {url}\n\n\
             [database]\nconnection = sqlite:///{db}\n\n\
             [fernet_tokens]\nkey_repository = {keys}\n\n\
             [credential]\nkey_repository = {credential_keys}\n\n\
             [baton]\nbind = {bind}\n",
            db = data_dir.join("keystone.db").display(),
            keys = data_dir.join("fernet-keys").display(),
            credential_keys = data_dir.join("credential-keys").display(),
            bind = args.bind,
        );
        baton_config::write_private(&conf_path, &conf)?;
    }
    let config = crate::load_config(std::slice::from_ref(&conf_path))?;
    let store = Store::connect(config.database.connection.as_deref().unwrap_or_default()).await?;
    store.db_sync().await?;
    setup_keys(&config)?;

    let env_password = std::env::var("BATON_ADMIN_PASSWORD")
        .ok()
        .filter(|p| !p.is_empty());
    let admin_exists = store
        .find_user("admin", &config.identity.default_domain_id)
        .await?
        .is_some();
    let clouds_path = data_dir.join("clouds.yaml");
    let password = match (env_password, admin_exists) {
        (Some(p), _) => Some(p),
        (None, false) => Some(generated_password()),
        // The password was printed (and saved in clouds.yaml) when the admin was created.
        (None, true) => None,
    };
    if let Some(password) = &password {
        let opts = BootstrapOptions::admin(password.clone(), &url);
        bootstrap(&config, &store, &opts).await?;
        let clouds = format!(
            "clouds:\n  baton:\n    auth:\n      auth_url: {url}/v3\n      username: admin\n      password: \"{password}\"\n      \
             project_name: admin\n      user_domain_name: Default\n      project_domain_name: Default\n    \
             region_name: RegionOne\n    interface: public\n    identity_api_version: 3\n"
        );
        baton_config::write_private(&clouds_path, &clouds)?;
        println!(
            "Admin password (shown once; also in {}): {password}",
            clouds_path.display()
        );
    } else {
        println!(
            "Admin exists; its credentials are in {}.",
            clouds_path.display()
        );
    }
    store.close().await;
    println!(
        "\nexport OS_AUTH_URL={url}/v3 OS_IDENTITY_API_VERSION=3 OS_USERNAME=admin \\\n  \
         OS_PROJECT_NAME=admin OS_USER_DOMAIN_NAME=Default OS_PROJECT_DOMAIN_NAME=Default \\\n  \
         OS_REGION_NAME=RegionOne OS_PASSWORD=<the admin password>\n\
         or: export OS_CLIENT_CONFIG_FILE={} OS_CLOUD=baton\n",
        clouds_path.display()
    );
    if args.no_serve {
        return Ok(());
    }
    println!(
        "Serving the identity API on {url} (configuration: {}). Ctrl-C stops.",
        conf_path.display()
    );
    crate::serve(config, Some(args.bind)).await
}
