//! The operator commands of python-openstackclient's identity plugin: `baton token|role|user|
//! project|domain|service|endpoint|catalog|application credential|access rule|trust ...`, with
//! its options, columns and value formatting (`-f table|json|value`, `-c COLUMN`), reading clouds.yaml, secure.yaml and `OS_*`
//! the way `openstack` does (`baton_client::CloudLoader`).
//!
//! Errors are one line on stderr and exit status 1, like `openstack`; where openstackclient
//! prints an empty line (e.g. an unknown user given to `role add`) Baton says what was not
//! found.

mod api;
mod application_credential;
mod catalog;
mod consumer;
mod credential;
mod endpoint_group;
mod federation;
mod limit;
mod oauth1_token;
mod output;
mod policy;
mod project;
mod project_set;
mod role;
mod service_provider;
mod token;
mod trust;
mod user;

use std::io::Write;
use std::process::ExitCode;

use baton_client::CloudLoader;
use clap::{Args, Subcommand};

pub use api::{CliError, CliResult, Identity};
pub use output::{Output, OutputArgs};

/// The help heading of the connection options.
const CONN: &str = "Connection (openstack's --os-* options; else OS_* variables, else clouds.yaml)";

/// Authentication and connection options (`openstack`'s global `--os-*` options); each
/// defaults to its `OS_*` variable, then to the cloud of clouds.yaml.
#[derive(Debug, Clone, Default, Args)]
pub struct ConnArgs {
    /// Cloud name in clouds.yaml (env: OS_CLOUD).
    #[arg(
        id = "os_cloud",
        help_heading = CONN,
        long = "os-cloud",
        value_name = "CLOUD",
        global = true
    )]
    cloud: Option<String>,
    /// Authentication type: password, v3password, token, v3token, v3applicationcredential
    /// (env: OS_AUTH_TYPE).
    #[arg(
        id = "os_auth_type",
        help_heading = CONN,
        long = "os-auth-type",
        value_name = "TYPE",
        global = true
    )]
    auth_type: Option<String>,
    /// Identity URL (env: OS_AUTH_URL).
    #[arg(
        id = "os_auth_url",
        help_heading = CONN,
        long = "os-auth-url",
        value_name = "URL",
        global = true
    )]
    auth_url: Option<String>,
    /// (env: OS_USERNAME)
    #[arg(
        id = "os_username",
        help_heading = CONN,
        long = "os-username",
        value_name = "NAME",
        global = true
    )]
    username: Option<String>,
    /// (env: OS_USER_ID)
    #[arg(
        id = "os_user_id",
        help_heading = CONN,
        long = "os-user-id",
        value_name = "ID",
        global = true
    )]
    user_id: Option<String>,
    /// (env: OS_PASSWORD)
    #[arg(
        id = "os_password",
        help_heading = CONN,
        long = "os-password",
        value_name = "PASSWORD",
        global = true
    )]
    password: Option<String>,
    /// (env: OS_USER_DOMAIN_NAME)
    #[arg(
        id = "os_user_domain_name",
        help_heading = CONN,
        long = "os-user-domain-name",
        value_name = "NAME",
        global = true
    )]
    user_domain_name: Option<String>,
    /// (env: OS_USER_DOMAIN_ID)
    #[arg(
        id = "os_user_domain_id",
        help_heading = CONN,
        long = "os-user-domain-id",
        value_name = "ID",
        global = true
    )]
    user_domain_id: Option<String>,
    /// (env: OS_PROJECT_NAME)
    #[arg(
        id = "os_project_name",
        help_heading = CONN,
        long = "os-project-name",
        value_name = "NAME",
        global = true
    )]
    project_name: Option<String>,
    /// (env: OS_PROJECT_ID)
    #[arg(
        id = "os_project_id",
        help_heading = CONN,
        long = "os-project-id",
        value_name = "ID",
        global = true
    )]
    project_id: Option<String>,
    /// (env: OS_PROJECT_DOMAIN_NAME)
    #[arg(
        id = "os_project_domain_name",
        help_heading = CONN,
        long = "os-project-domain-name",
        value_name = "NAME",
        global = true
    )]
    project_domain_name: Option<String>,
    /// (env: OS_PROJECT_DOMAIN_ID)
    #[arg(
        id = "os_project_domain_id",
        help_heading = CONN,
        long = "os-project-domain-id",
        value_name = "ID",
        global = true
    )]
    project_domain_id: Option<String>,
    /// Domain scope, or the user's and project's domain with a project (env: OS_DOMAIN_NAME).
    #[arg(
        id = "os_domain_name",
        help_heading = CONN,
        long = "os-domain-name",
        value_name = "NAME",
        global = true
    )]
    domain_name: Option<String>,
    /// (env: OS_DOMAIN_ID)
    #[arg(
        id = "os_domain_id",
        help_heading = CONN,
        long = "os-domain-id",
        value_name = "ID",
        global = true
    )]
    domain_id: Option<String>,
    /// `all` for a system-scoped token (env: OS_SYSTEM_SCOPE).
    #[arg(
        id = "os_system_scope",
        help_heading = CONN,
        long = "os-system-scope",
        value_name = "all",
        global = true
    )]
    system_scope: Option<String>,
    /// (env: OS_TOKEN)
    #[arg(
        id = "os_token",
        help_heading = CONN,
        long = "os-token",
        value_name = "TOKEN",
        global = true
    )]
    token: Option<String>,
    /// (env: OS_APPLICATION_CREDENTIAL_ID)
    #[arg(
        id = "os_application_credential_id",
        help_heading = CONN,
        long = "os-application-credential-id",
        value_name = "ID",
        global = true
    )]
    application_credential_id: Option<String>,
    /// (env: OS_APPLICATION_CREDENTIAL_NAME)
    #[arg(
        id = "os_application_credential_name",
        help_heading = CONN,
        long = "os-application-credential-name",
        value_name = "NAME",
        global = true
    )]
    application_credential_name: Option<String>,
    /// (env: OS_APPLICATION_CREDENTIAL_SECRET)
    #[arg(
        id = "os_application_credential_secret",
        help_heading = CONN,
        long = "os-application-credential-secret",
        value_name = "SECRET",
        global = true
    )]
    application_credential_secret: Option<String>,
    /// Trust to scope the token to, as the trustee (env: OS_TRUST_ID).
    #[arg(
        id = "os_trust_id",
        help_heading = CONN,
        long = "os-trust-id",
        value_name = "ID",
        global = true
    )]
    trust_id: Option<String>,
    /// (env: OS_DEFAULT_DOMAIN; default: default)
    #[arg(
        id = "os_default_domain",
        help_heading = CONN,
        long = "os-default-domain",
        value_name = "ID",
        global = true
    )]
    default_domain: Option<String>,
    /// (env: OS_REGION_NAME)
    #[arg(
        id = "os_region_name",
        help_heading = CONN,
        long = "os-region-name",
        value_name = "REGION",
        global = true
    )]
    region_name: Option<String>,
    /// public, internal or admin (env: OS_INTERFACE; default public).
    #[arg(
        id = "os_interface",
        help_heading = CONN,
        long = "os-interface",
        value_name = "INTERFACE",
        global = true
    )]
    interface: Option<String>,
    /// CA certificates file (env: OS_CACERT).
    #[arg(
        id = "os_cacert",
        help_heading = CONN,
        long = "os-cacert",
        value_name = "FILE",
        global = true
    )]
    cacert: Option<String>,
    /// Client certificate (env: OS_CERT).
    #[arg(id = "os_cert",
        help_heading = CONN, long = "os-cert", value_name = "FILE", global = true)]
    cert: Option<String>,
    /// Client certificate key (env: OS_KEY).
    #[arg(id = "os_key",
        help_heading = CONN, long = "os-key", value_name = "FILE", global = true)]
    key: Option<String>,
    /// Do not verify the server's certificate.
    // Ids apart from the commands' own (--password, --domain, --interface, TOKEN): clap
    // shares values between a global argument and any other of the same id.
    #[arg(id = "os_insecure",
        help_heading = CONN, long = "insecure", global = true)]
    insecure: bool,
}

impl ConnArgs {
    fn loader(&self) -> CloudLoader {
        let mut l = CloudLoader::from_process();
        let flags: [(&str, &str, &Option<String>); 26] = [
            ("cloud", "--os-cloud", &self.cloud),
            ("auth_type", "--os-auth-type", &self.auth_type),
            ("auth_url", "--os-auth-url", &self.auth_url),
            ("username", "--os-username", &self.username),
            ("user_id", "--os-user-id", &self.user_id),
            ("password", "--os-password", &self.password),
            (
                "user_domain_name",
                "--os-user-domain-name",
                &self.user_domain_name,
            ),
            (
                "user_domain_id",
                "--os-user-domain-id",
                &self.user_domain_id,
            ),
            ("project_name", "--os-project-name", &self.project_name),
            ("project_id", "--os-project-id", &self.project_id),
            (
                "project_domain_name",
                "--os-project-domain-name",
                &self.project_domain_name,
            ),
            (
                "project_domain_id",
                "--os-project-domain-id",
                &self.project_domain_id,
            ),
            ("domain_name", "--os-domain-name", &self.domain_name),
            ("domain_id", "--os-domain-id", &self.domain_id),
            ("system_scope", "--os-system-scope", &self.system_scope),
            ("token", "--os-token", &self.token),
            ("trust_id", "--os-trust-id", &self.trust_id),
            (
                "application_credential_id",
                "--os-application-credential-id",
                &self.application_credential_id,
            ),
            (
                "application_credential_name",
                "--os-application-credential-name",
                &self.application_credential_name,
            ),
            (
                "application_credential_secret",
                "--os-application-credential-secret",
                &self.application_credential_secret,
            ),
            (
                "default_domain",
                "--os-default-domain",
                &self.default_domain,
            ),
            ("region_name", "--os-region-name", &self.region_name),
            ("interface", "--os-interface", &self.interface),
            ("cacert", "--os-cacert", &self.cacert),
            ("cert", "--os-cert", &self.cert),
            ("key", "--os-key", &self.key),
        ];
        for (key, flag, value) in flags {
            if let Some(v) = value {
                l = l.arg(key, flag, v.clone());
            }
        }
        if self.insecure {
            l = l.arg("insecure", "--insecure", "true");
        }
        l
    }

    async fn connect(&self) -> CliResult<Identity> {
        let cloud = self.loader().load().map_err(|e| CliError(e.to_string()))?;
        Identity::connect(cloud).await
    }
}

macro_rules! family {
    ($name:ident, $cmd:ty) => {
        #[derive(Debug, Args)]
        pub struct $name {
            #[command(flatten)]
            conn: ConnArgs,
            #[command(subcommand)]
            cmd: $cmd,
        }
    };
}

family!(TokenFamily, token::TokenCmd);
family!(RoleFamily, role::RoleCmd);
family!(UserFamily, user::UserCmd);
family!(ProjectFamily, project::ProjectCmd);
family!(DomainFamily, project::DomainCmd);
family!(ServiceFamily, catalog::ServiceCmd);
family!(EndpointFamily, catalog::EndpointCmd);
family!(CatalogFamily, catalog::CatalogCmd);
family!(ApplicationFamily, application_credential::ApplicationCmd);
family!(AccessFamily, application_credential::AccessCmd);
family!(TrustFamily, trust::TrustCmd);
family!(CredentialFamily, credential::CredentialCmd);
family!(Ec2Family, credential::Ec2Cmd);
family!(RegisteredFamily, limit::RegisteredCmd);
family!(LimitFamily, limit::LimitCmd);
family!(PolicyFamily, policy::PolicyCmd);
family!(IdentityFamily, federation::IdentityCmd);
family!(MappingFamily, federation::MappingCmd);
family!(FederationFamily, federation::FederationCmd);
family!(ConsumerFamily, consumer::ConsumerCmd);
family!(RequestFamily, oauth1_token::RequestCmd);

/// The identity commands of `openstack`, against Baton or any Keystone. (Boxed: the
/// connection options are large next to the other commands of `baton`.)
#[derive(Debug, Subcommand)]
pub enum OsCommand {
    /// Issue or revoke tokens (openstack token ...).
    Token(Box<TokenFamily>),
    /// Roles and role assignments (openstack role ...).
    Role(Box<RoleFamily>),
    /// Users (openstack user ...).
    User(Box<UserFamily>),
    /// Projects (openstack project ...).
    Project(Box<ProjectFamily>),
    /// Domains (openstack domain ...).
    Domain(Box<DomainFamily>),
    /// Catalog services (openstack service ...).
    Service(Box<ServiceFamily>),
    /// Catalog endpoints (openstack endpoint ...).
    Endpoint(Box<EndpointFamily>),
    /// The token's service catalog (openstack catalog ...).
    Catalog(Box<CatalogFamily>),
    /// Application credentials (openstack application credential ...).
    Application(Box<ApplicationFamily>),
    /// Access rules of application credentials and OAuth1 access tokens (openstack access
    /// rule|token ...).
    Access(Box<AccessFamily>),
    /// Trusts (openstack trust ...).
    Trust(Box<TrustFamily>),
    /// Credentials (openstack credential ...).
    Credential(Box<CredentialFamily>),
    /// EC2 credentials (openstack ec2 credentials ...).
    Ec2(Box<Ec2Family>),
    /// Registered limits (openstack registered limit ...).
    Registered(Box<RegisteredFamily>),
    /// Project limits (openstack limit ...).
    Limit(Box<LimitFamily>),
    /// Policy blobs (openstack policy ...).
    Policy(Box<PolicyFamily>),
    /// Federation identity providers (openstack identity provider ...).
    Identity(Box<IdentityFamily>),
    /// Federation mappings (openstack mapping ...).
    Mapping(Box<MappingFamily>),
    /// Federation protocols (openstack federation protocol ...).
    Federation(Box<FederationFamily>),
    /// OAuth1 consumers (openstack consumer ...).
    Consumer(Box<ConsumerFamily>),
    /// OAuth1 request tokens (openstack request token ...).
    Request(Box<RequestFamily>),
}

/// What a command produced.
pub enum Done {
    Print(Output, OutputArgs),
    Nothing,
}

async fn dispatch(cmd: OsCommand) -> CliResult<Done> {
    match cmd {
        OsCommand::Token(f) => token::run(&f.conn.connect().await?, f.cmd).await,
        OsCommand::Role(f) => role::run(&f.conn.connect().await?, f.cmd).await,
        OsCommand::User(f) => user::run(&f.conn.connect().await?, f.cmd).await,
        OsCommand::Project(f) => project::run_project(&f.conn.connect().await?, f.cmd).await,
        OsCommand::Domain(f) => project::run_domain(&f.conn.connect().await?, f.cmd).await,
        OsCommand::Service(f) => catalog::run_service(&f.conn.connect().await?, f.cmd).await,
        OsCommand::Endpoint(f) => catalog::run_endpoint(&f.conn.connect().await?, f.cmd).await,
        OsCommand::Catalog(f) => catalog::run_catalog(&f.conn.connect().await?, f.cmd).await,
        OsCommand::Application(f) => {
            application_credential::run_application(&f.conn.connect().await?, f.cmd).await
        }
        OsCommand::Access(f) => {
            application_credential::run_access(&f.conn.connect().await?, f.cmd).await
        }
        OsCommand::Trust(f) => trust::run(&f.conn.connect().await?, f.cmd).await,
        OsCommand::Credential(f) => {
            credential::run_credential(&f.conn.connect().await?, f.cmd).await
        }
        OsCommand::Ec2(f) => credential::run_ec2(&f.conn.connect().await?, f.cmd).await,
        OsCommand::Registered(f) => limit::run_registered(&f.conn.connect().await?, f.cmd).await,
        OsCommand::Limit(f) => limit::run_limit(&f.conn.connect().await?, f.cmd).await,
        OsCommand::Policy(f) => policy::run(&f.conn.connect().await?, f.cmd).await,
        OsCommand::Identity(f) => federation::run_identity(&f.conn.connect().await?, f.cmd).await,
        OsCommand::Mapping(f) => federation::run_mapping(&f.conn.connect().await?, f.cmd).await,
        OsCommand::Federation(f) => {
            federation::run_federation(&f.conn.connect().await?, f.cmd).await
        }
        OsCommand::Consumer(f) => consumer::run(&f.conn.connect().await?, f.cmd).await,
        OsCommand::Request(f) => oauth1_token::run_request(&f.conn.connect().await?, f.cmd).await,
    }
}

/// Runs one command: its output on stdout, or one line on stderr and exit status 1.
pub async fn run(cmd: OsCommand) -> ExitCode {
    let result = dispatch(cmd).await.and_then(|done| match done {
        Done::Nothing => Ok(String::new()),
        Done::Print(out, args) => out.render(&args).map_err(CliError),
    });
    match result {
        Ok(text) => {
            let mut stdout = std::io::stdout().lock();
            if stdout
                .write_all(text.as_bytes())
                .and_then(|_| stdout.flush())
                .is_err()
            {
                return ExitCode::FAILURE;
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            let line: String = e.0.split_whitespace().collect::<Vec<_>>().join(" ");
            eprintln!("{line}");
            ExitCode::FAILURE
        }
    }
}

/// openstackclient's deleting of several resources: each of `names` in turn, every failure
/// named (`Failed to delete <noun> '<name>': <error>`), then how many of the `what` failed.
pub async fn delete_each<F, Fut>(
    names: &[String],
    noun: &str,
    what: &str,
    one: F,
) -> CliResult<Done>
where
    F: Fn(String) -> Fut,
    Fut: std::future::Future<Output = CliResult<()>>,
{
    let mut failures = Vec::new();
    for name in names {
        if let Err(e) = one(name.clone()).await {
            failures.push(format!("Failed to delete {noun} '{name}': {e}"));
        }
    }
    if failures.is_empty() {
        return Ok(Done::Nothing);
    }
    Err(CliError(format!(
        "{}; {} of {} {what} failed to delete.",
        failures.join("; "),
        failures.len(),
        names.len()
    )))
}

/// A warning on stderr, like openstackclient's log warnings.
pub fn warn(msg: &str) {
    eprintln!("{msg}");
}
