//! `credential create|list|show|delete` and `ec2 credentials create|list|show|delete`
//! (openstackclient `identity/v3/credential.py` and `ec2creds.py`).

use baton_client::Method;
use clap::Subcommand;
use serde_json::json;

use super::api::Kind;
use super::output::{Cell, Output, OutputArgs, Value};
use super::{CliResult, Done, Identity};

#[derive(Debug, Subcommand)]
pub enum CredentialCmd {
    /// Create new credential.
    Create {
        /// User that owns the credential (name or ID).
        user: String,
        /// New credential data.
        data: String,
        /// New credential type: cert, ec2, totp and so on.
        #[arg(long = "type", default_value = "cert")]
        kind: String,
        /// Project which limits the scope of the credential (name or ID).
        #[arg(long)]
        project: Option<String>,
        #[command(flatten)]
        out: OutputArgs,
    },
    /// List credentials.
    List {
        /// Filter credentials by <user> (name or ID).
        #[arg(long)]
        user: Option<String>,
        /// Domain the user belongs to (name or ID).
        #[arg(long)]
        user_domain: Option<String>,
        /// Filter credentials by type: cert, ec2, totp and so on.
        #[arg(long = "type")]
        kind: Option<String>,
        #[command(flatten)]
        out: OutputArgs,
    },
    /// Display credential details.
    Show {
        /// ID of credential to display.
        credential: String,
        #[command(flatten)]
        out: OutputArgs,
    },
    /// Delete credential(s).
    Delete {
        /// ID of credential(s) to delete.
        #[arg(required = true, value_name = "CREDENTIAL_ID")]
        credentials: Vec<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum Ec2Cmd {
    /// EC2 credentials (openstack ec2 credentials ...).
    Credentials {
        #[command(subcommand)]
        cmd: Ec2CredsCmd,
    },
}

#[derive(Debug, Subcommand)]
pub enum Ec2CredsCmd {
    /// Create EC2 credentials.
    Create {
        /// Create credentials in project (name or ID; default: current authenticated project).
        #[arg(long)]
        project: Option<String>,
        /// Create credentials for user (name or ID; default: current authenticated user).
        #[arg(long)]
        user: Option<String>,
        /// Domain the user belongs to (name or ID).
        #[arg(long)]
        user_domain: Option<String>,
        /// Domain the project belongs to (name or ID).
        #[arg(long)]
        project_domain: Option<String>,
        #[command(flatten)]
        out: OutputArgs,
    },
    /// List EC2 credentials.
    List {
        /// Filter list by user (name or ID).
        #[arg(long)]
        user: Option<String>,
        /// Domain the user belongs to (name or ID).
        #[arg(long)]
        user_domain: Option<String>,
        #[command(flatten)]
        out: OutputArgs,
    },
    /// Display EC2 credentials details.
    Show {
        /// Credentials access key.
        access_key: String,
        /// Show credentials for user (name or ID).
        #[arg(long)]
        user: Option<String>,
        /// Domain the user belongs to (name or ID).
        #[arg(long)]
        user_domain: Option<String>,
        #[command(flatten)]
        out: OutputArgs,
    },
    /// Delete EC2 credentials.
    Delete {
        /// Credentials access key(s).
        #[arg(required = true, value_name = "ACCESS_KEY")]
        access_keys: Vec<String>,
        /// Delete credentials for user (name or ID).
        #[arg(long)]
        user: Option<String>,
        /// Domain the user belongs to (name or ID).
        #[arg(long)]
        user_domain: Option<String>,
    },
}

/// openstackclient's `_format_credential`: five columns in this order.
fn format_credential(c: &Value) -> Output {
    Output::one(
        ["blob", "id", "project_id", "type", "user_id"]
            .iter()
            .map(|k| (*k, c.field(k))),
    )
}

/// The id of a resource found by name or id (within a domain found the same way).
async fn find_id(id: &Identity, kind: Kind, name: &str, domain: Option<&str>) -> CliResult<String> {
    let mut filters = Vec::new();
    if let Some(d) = domain {
        let dom = id.find(Kind::Domain, d, &[]).await?;
        filters.push((
            "domain_id",
            dom.str_field("id").unwrap_or_default().to_string(),
        ));
    }
    let found = id.find(kind, name, &filters).await?;
    Ok(found.str_field("id").unwrap_or_default().to_string())
}

pub async fn run_credential(id: &Identity, cmd: CredentialCmd) -> CliResult<Done> {
    match cmd {
        CredentialCmd::Create {
            user,
            data,
            kind,
            project,
            out,
        } => {
            let mut body = json!({
                "user_id": find_id(id, Kind::User, &user, None).await?,
                "type": kind,
                "blob": data,
            });
            if let Some(p) = &project {
                body["project_id"] = json!(find_id(id, Kind::Project, p, None).await?);
            }
            let made = id
                .call(
                    Method::POST,
                    &["credentials"],
                    &[],
                    Some(json!({ "credential": body })),
                )
                .await?
                .unwrap_or(Value::Null);
            Ok(Done::Print(
                format_credential(&made.field("credential")),
                out,
            ))
        }
        CredentialCmd::List {
            user,
            user_domain,
            kind,
            out,
        } => {
            let mut q: Vec<(&str, String)> = Vec::new();
            if let Some(u) = &user {
                q.push((
                    "user_id",
                    find_id(id, Kind::User, u, user_domain.as_deref()).await?,
                ));
            }
            if let Some(t) = kind {
                q.push(("type", t));
            }
            let creds = id.list(&["credentials"], "credentials", &q).await?;
            let keys = ["id", "type", "user_id", "blob", "project_id"];
            let rows = creds
                .iter()
                .map(|c| keys.iter().map(|k| Cell::from(c.field(k))).collect())
                .collect();
            let headers = ["ID", "Type", "User ID", "Data", "Project ID"];
            Ok(Done::Print(
                Output::list(&headers, rows).with_list_headers(),
                out,
            ))
        }
        CredentialCmd::Show { credential, out } => {
            let c = id.get(&["credentials", &credential], &[]).await?;
            Ok(Done::Print(format_credential(&c.field("credential")), out))
        }
        CredentialCmd::Delete { credentials } => {
            super::delete_each(
                &credentials,
                "credentials with ID",
                "credential",
                |c| async move {
                    id.call(Method::DELETE, &["credentials", &c], &[], None)
                        .await?;
                    Ok(())
                },
            )
            .await
        }
    }
}

/// openstackclient's `_determine_ec2_user`: `--user` (in `--user-domain`), else the token's.
async fn ec2_user(id: &Identity, user: Option<&str>, domain: Option<&str>) -> CliResult<String> {
    match user {
        Some(u) => find_id(id, Kind::User, u, domain).await,
        None => Ok(id.access.user_id().to_string()),
    }
}

/// What `ec2 credentials create|show` print: every attribute, `tenant_id` as `project_id`,
/// sorted by name.
fn format_ec2(c: &Value) -> Output {
    let Value::Object(fields) = c else {
        return Output::one(Vec::<(&str, Value)>::new());
    };
    let mut fields: Vec<(String, Value)> = fields
        .iter()
        .map(|(k, v)| {
            let k = if k == "tenant_id" {
                "project_id"
            } else {
                k.as_str()
            };
            (k.to_string(), v.clone())
        })
        .collect();
    fields.sort_by(|a, b| a.0.cmp(&b.0));
    Output::one(fields)
}

pub async fn run_ec2(id: &Identity, cmd: Ec2Cmd) -> CliResult<Done> {
    let Ec2Cmd::Credentials { cmd } = cmd;
    match cmd {
        Ec2CredsCmd::Create {
            project,
            user,
            user_domain,
            project_domain,
            out,
        } => {
            let uid = ec2_user(id, user.as_deref(), user_domain.as_deref()).await?;
            let pid = match &project {
                Some(p) => find_id(id, Kind::Project, p, project_domain.as_deref()).await?,
                None => id.access.project_id().unwrap_or_default().to_string(),
            };
            let path = ["users", uid.as_str(), "credentials", "OS-EC2"];
            let made = id
                .call(Method::POST, &path, &[], Some(json!({ "tenant_id": pid })))
                .await?
                .unwrap_or(Value::Null);
            Ok(Done::Print(format_ec2(&made.field("credential")), out))
        }
        Ec2CredsCmd::List {
            user,
            user_domain,
            out,
        } => {
            let uid = ec2_user(id, user.as_deref(), user_domain.as_deref()).await?;
            let creds = id
                .list(
                    &["users", &uid, "credentials", "OS-EC2"],
                    "credentials",
                    &[],
                )
                .await?;
            let keys = ["access", "secret", "tenant_id", "user_id"];
            let rows = creds
                .iter()
                .map(|c| keys.iter().map(|k| Cell::from(c.field(k))).collect())
                .collect();
            let headers = ["Access", "Secret", "Project ID", "User ID"];
            Ok(Done::Print(
                Output::list(&headers, rows).with_list_headers(),
                out,
            ))
        }
        Ec2CredsCmd::Show {
            access_key,
            user,
            user_domain,
            out,
        } => {
            let uid = ec2_user(id, user.as_deref(), user_domain.as_deref()).await?;
            let c = id
                .get(&["users", &uid, "credentials", "OS-EC2", &access_key], &[])
                .await?;
            Ok(Done::Print(format_ec2(&c.field("credential")), out))
        }
        Ec2CredsCmd::Delete {
            access_keys,
            user,
            user_domain,
        } => {
            let uid = ec2_user(id, user.as_deref(), user_domain.as_deref()).await?;
            let uid = uid.as_str();
            super::delete_each(
                &access_keys,
                "EC2 credentials with access key",
                "EC2 keys",
                |a| async move {
                    let path = ["users", uid, "credentials", "OS-EC2", a.as_str()];
                    id.call(Method::DELETE, &path, &[], None).await?;
                    Ok(())
                },
            )
            .await
        }
    }
}
