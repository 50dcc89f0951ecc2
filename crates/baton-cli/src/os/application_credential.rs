//! `application credential create|list|show|delete` and `access rule list|show|delete`
//! (openstackclient `identity/v3/application_credential.py`, `access_rule.py`). Both act on
//! the authenticated user's own credentials and rules unless `--user` is given to a list.

use baton_client::Method;
use clap::{Args, Subcommand};
use serde_json::json;

use super::api::{CallError, Kind};
use super::output::{Cell, Output, OutputArgs, Value};
use super::{delete_each, CliError, CliResult, Done, Identity};

/// `application ...`: only `credential` is one of openstackclient's.
#[derive(Debug, Subcommand)]
pub enum ApplicationCmd {
    /// Application credentials (openstack application credential ...).
    Credential {
        #[command(subcommand)]
        cmd: AppCredCmd,
    },
}

/// `access rule ...` and `access token ...`.
#[derive(Debug, Subcommand)]
pub enum AccessCmd {
    /// Access rules of application credentials (openstack access rule ...).
    Rule {
        #[command(subcommand)]
        cmd: AccessRuleCmd,
    },
    /// OAuth1 access tokens (openstack access token ...).
    Token {
        #[command(subcommand)]
        cmd: super::oauth1_token::AccessTokenCmd,
    },
}

#[derive(Debug, Subcommand)]
pub enum AppCredCmd {
    /// Create new application credential.
    Create(AppCredCreate),
    /// List application credentials.
    List(UserArgs),
    /// Display application credential details.
    Show {
        /// Application credential to display (name or ID).
        application_credential: String,
        #[command(flatten)]
        out: OutputArgs,
    },
    /// Delete application credentials(s).
    Delete {
        /// Application credentials(s) to delete (name or ID).
        #[arg(required = true, value_name = "APPLICATION_CREDENTIAL")]
        application_credentials: Vec<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum AccessRuleCmd {
    /// List access rules.
    List(UserArgs),
    /// Display access rule details.
    Show {
        /// Access rule ID to display.
        access_rule: String,
        #[command(flatten)]
        out: OutputArgs,
    },
    /// Delete access rule(s).
    Delete {
        /// Access rule ID(s) to delete.
        #[arg(required = true, value_name = "ACCESS_RULE")]
        access_rules: Vec<String>,
    },
}

/// The options of `application credential create`.
#[derive(Debug, Args)]
pub struct AppCredCreate {
    /// Name of the application credential.
    name: String,
    /// Secret to use for authentication (if not provided, one will be generated).
    #[arg(long)]
    secret: Option<String>,
    /// Roles to authorize (name or ID) (repeat option to set multiple values).
    #[arg(long = "role", value_name = "ROLE")]
    roles: Vec<String>,
    /// Sets an expiration date for the application credential, format of
    /// YYYY-mm-ddTHH:MM:SS (if not provided, the application credential will not expire).
    #[arg(long)]
    expiration: Option<String>,
    /// Application credential description.
    #[arg(long)]
    description: Option<String>,
    /// Enable application credential to create and delete other application credentials and
    /// trusts (this is potentially dangerous behavior and is disabled by default).
    #[arg(long)]
    unrestricted: bool,
    /// Prohibit application credential from creating and deleting other application
    /// credentials and trusts (this is the default behavior).
    #[arg(long)]
    restricted: bool,
    /// Either a string or file path containing a JSON-formatted list of access rules, each
    /// containing a request method, path, and service.
    #[arg(long)]
    access_rules: Option<String>,
    #[command(flatten)]
    out: OutputArgs,
}

/// `--user` and `--user-domain` of the list commands.
#[derive(Debug, Args)]
pub struct UserArgs {
    /// User whose entries to list (name or ID; default: the authenticated user).
    #[arg(long)]
    user: Option<String>,
    /// Domain the user belongs to (name or ID).
    #[arg(long)]
    user_domain: Option<String>,
    #[command(flatten)]
    out: OutputArgs,
}

const HEADERS: [&str; 8] = [
    "ID",
    "Name",
    "Description",
    "Project ID",
    "Roles",
    "Unrestricted",
    "Access Rules",
    "Expires At",
];
const KEYS: [&str; 8] = [
    "id",
    "name",
    "description",
    "project_id",
    "roles",
    "unrestricted",
    "access_rules",
    "expires_at",
];

/// A credential's cells in openstackclient's order; `Roles` shows the sorted role names
/// (osc_lib's `format_list`), everything else as the SDK holds it.
fn cells(c: &Value) -> Vec<Cell> {
    KEYS.iter()
        .map(|k| {
            let value = c.field(k);
            if *k == "roles" {
                let mut names: Vec<String> = value
                    .as_array()
                    .iter()
                    .filter_map(|r| r.str_field("name").map(str::to_string))
                    .collect();
                names.sort();
                Cell {
                    value,
                    human: Some(names.join(", ")),
                }
            } else {
                Cell::from(value)
            }
        })
        .collect()
}

fn show_one(c: &Value, secret: bool) -> Output {
    let mut fields: Vec<(String, Cell)> = HEADERS
        .iter()
        .map(|h| h.to_string())
        .zip(cells(c))
        .collect();
    if secret {
        fields.push(("Secret".into(), Cell::from(c.field("secret"))));
    }
    Output::One(fields)
}

/// The authenticated user's id (what openstackclient gets from its auth plugin).
fn own_user(id: &Identity) -> String {
    id.access.user_id().to_string()
}

/// `--user [--user-domain]` as an id, else the authenticated user.
async fn user_of(id: &Identity, args: &UserArgs) -> CliResult<String> {
    let Some(user) = &args.user else {
        return Ok(own_user(id));
    };
    let filters = match &args.user_domain {
        Some(d) => vec![("domain_id", id.domain_id(d).await?)],
        None => Vec::new(),
    };
    id.find_id(Kind::User, user, &filters, true).await
}

/// openstacksdk's `find_application_credential`: by id, then by name; "No
/// ApplicationCredential found for x" when neither matches.
async fn find_credential(id: &Identity, user_id: &str, name_or_id: &str) -> CliResult<Value> {
    let base = ["users", user_id, "application_credentials"];
    match id
        .call(Method::GET, &[&base[..], &[name_or_id]].concat(), &[], None)
        .await
    {
        Ok(Some(v)) => return Ok(v.field("application_credential")),
        Ok(None) => {}
        Err(CallError::Api(a)) if matches!(a.status, 400 | 404) => {}
        Err(e) => return Err(e.into()),
    }
    let found = id
        .list(
            &base,
            "application_credentials",
            &[("name", name_or_id.to_string())],
        )
        .await?;
    match found.as_slice() {
        [one] => Ok(one.clone()),
        [] => Err(CliError(format!(
            "No ApplicationCredential found for {name_or_id}"
        ))),
        _ => Err(CliError(format!(
            "More than one ApplicationCredential exists with the name '{name_or_id}'."
        ))),
    }
}

/// `--access-rules`: JSON text, else the name of a file holding it.
fn read_access_rules(text: &str) -> CliResult<serde_json::Value> {
    if let Ok(v) = serde_json::from_str(text) {
        return Ok(v);
    }
    std::fs::read_to_string(text)
        .ok()
        .and_then(|s| serde_json::from_str(&s).ok())
        .ok_or_else(|| {
            CliError("Access rules is not valid JSON string or file does not exist.".into())
        })
}

/// openstackclient's `is_uuid_like`: 32 hex digits, with or without dashes.
fn is_uuid_like(s: &str) -> bool {
    uuid::Uuid::parse_str(s).is_ok()
}

async fn create(id: &Identity, a: AppCredCreate) -> CliResult<Done> {
    let roles: Vec<serde_json::Value> = a
        .roles
        .iter()
        .map(|r| {
            if is_uuid_like(r) {
                json!({ "id": r })
            } else {
                json!({ "name": r })
            }
        })
        .collect();
    let expires_at = match &a.expiration {
        Some(e) => Some(
            chrono::NaiveDateTime::parse_from_str(e, "%Y-%m-%dT%H:%M:%S")
                .map_err(|_| {
                    CliError(format!(
                        "time data '{e}' does not match format '%Y-%m-%dT%H:%M:%S'"
                    ))
                })?
                .format("%Y-%m-%dT%H:%M:%S")
                .to_string(),
        ),
        None => None,
    };
    let access_rules = match &a.access_rules {
        Some(t) => read_access_rules(t)?,
        None => json!([]),
    };
    let body = json!({"application_credential": {
        "name": a.name,
        "roles": roles,
        "expires_at": expires_at,
        "description": a.description,
        "secret": a.secret,
        "unrestricted": a.unrestricted && !a.restricted,
        "access_rules": access_rules,
    }});
    let user = own_user(id);
    let created = id
        .call(
            Method::POST,
            &["users", &user, "application_credentials"],
            &[],
            Some(body),
        )
        .await?
        .unwrap_or(Value::Null);
    Ok(Done::Print(
        show_one(&created.field("application_credential"), true),
        a.out,
    ))
}

pub async fn run_application(id: &Identity, cmd: ApplicationCmd) -> CliResult<Done> {
    let ApplicationCmd::Credential { cmd } = cmd;
    match cmd {
        AppCredCmd::Create(a) => create(id, a).await,
        AppCredCmd::List(u) => {
            let user = user_of(id, &u).await?;
            let creds = id
                .list(
                    &["users", &user, "application_credentials"],
                    "application_credentials",
                    &[],
                )
                .await?;
            let rows = creds.iter().map(cells).collect();
            Ok(Done::Print(Output::list(&HEADERS, rows), u.out))
        }
        AppCredCmd::Show {
            application_credential,
            out,
        } => {
            let c = find_credential(id, &own_user(id), &application_credential).await?;
            Ok(Done::Print(show_one(&c, false), out))
        }
        AppCredCmd::Delete {
            application_credentials,
        } => {
            let user = own_user(id);
            delete_each(
                &application_credentials,
                "application credential with name or ID",
                "application credentials",
                |name| {
                    let user = user.clone();
                    async move {
                        let c = find_credential(id, &user, &name).await?;
                        let cid = c.str_field("id").unwrap_or_default().to_string();
                        id.call(
                            Method::DELETE,
                            &["users", &user, "application_credentials", &cid],
                            &[],
                            None,
                        )
                        .await?;
                        Ok(())
                    }
                },
            )
            .await
        }
    }
}

pub async fn run_access(id: &Identity, cmd: AccessCmd) -> CliResult<Done> {
    let cmd = match cmd {
        AccessCmd::Rule { cmd } => cmd,
        AccessCmd::Token { cmd } => return super::oauth1_token::run_access_token(id, cmd).await,
    };
    match cmd {
        AccessRuleCmd::List(u) => {
            let user = user_of(id, &u).await?;
            let rules = id
                .list(&["users", &user, "access_rules"], "access_rules", &[])
                .await?;
            let rows = rules
                .iter()
                .map(|r| {
                    ["id", "service", "method", "path"]
                        .iter()
                        .map(|k| Cell::from(r.field(k)))
                        .collect()
                })
                .collect();
            Ok(Done::Print(
                Output::list(&["ID", "Service", "Method", "Path"], rows),
                u.out,
            ))
        }
        AccessRuleCmd::Show { access_rule, out } => {
            let user = own_user(id);
            let r = id
                .get(&["users", &user, "access_rules", &access_rule], &[])
                .await?
                .field("access_rule");
            Ok(Done::Print(
                Output::one([
                    ("ID", r.field("id")),
                    ("Method", r.field("method")),
                    ("Path", r.field("path")),
                    ("Service", r.field("service")),
                ]),
                out,
            ))
        }
        AccessRuleCmd::Delete { access_rules } => {
            let user = own_user(id);
            delete_each(
                &access_rules,
                "access rule with ID",
                "access rules",
                |rule| {
                    let user = user.clone();
                    async move {
                        id.call(
                            Method::DELETE,
                            &["users", &user, "access_rules", &rule],
                            &[],
                            None,
                        )
                        .await?;
                        Ok(())
                    }
                },
            )
            .await
        }
    }
}
