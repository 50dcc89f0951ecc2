//! `policy create|delete|list|show|set` (openstackclient `identity/v3/policy.py`): policy blobs,
//! printed as openstackclient prints them (the blob under the heading `rules`).

use baton_client::Method;
use clap::Subcommand;
use serde_json::{json, Map};

use super::output::{Cell, Output, OutputArgs, Value};
use super::{CliError, CliResult, Done, Identity};

#[derive(Debug, Subcommand)]
pub enum PolicyCmd {
    /// Create new policy.
    Create {
        /// New serialized policy rules file.
        #[arg(value_name = "FILENAME")]
        rules: String,
        /// New MIME type of the policy rules file (defaults to application/json).
        #[arg(long = "type", value_name = "TYPE", default_value = "application/json")]
        policy_type: String,
        #[command(flatten)]
        out: OutputArgs,
    },
    /// Delete policy(s).
    Delete {
        /// Policy(s) to delete.
        #[arg(required = true, value_name = "POLICY")]
        policies: Vec<String>,
    },
    /// List policies.
    List {
        /// List additional fields in output.
        #[arg(long)]
        long: bool,
        #[command(flatten)]
        out: OutputArgs,
    },
    /// Display policy details.
    Show {
        /// Policy to display.
        policy: String,
        #[command(flatten)]
        out: OutputArgs,
    },
    /// Set policy properties.
    Set {
        /// Policy to modify.
        policy: String,
        /// New MIME type of the policy rules file.
        #[arg(long = "type", value_name = "TYPE")]
        policy_type: Option<String>,
        /// New serialized policy rules file.
        #[arg(long, value_name = "FILENAME")]
        rules: Option<String>,
    },
}

/// openstackclient's `_format_policy`: `id`, `rules` (the blob), `type`.
fn format_policy(p: &Value) -> Output {
    Output::one([
        ("id", p.field("id")),
        ("rules", p.field("blob")),
        ("type", p.field("type")),
    ])
}

/// osc-lib's `read_blob_file_contents`: the file's text, stripped.
fn read_rules(path: &str) -> CliResult<String> {
    std::fs::read_to_string(path)
        .map(|text| text.trim().to_string())
        .map_err(|_| CliError(format!("Error occurred trying to read from file {path}")))
}

async fn delete(id: &Identity, policies: &[String]) -> CliResult<Done> {
    super::delete_each(
        policies,
        "policy with name or ID",
        "policies",
        |p| async move {
            id.call(Method::DELETE, &["policies", &p], &[], None)
                .await?;
            Ok(())
        },
    )
    .await
}

fn listing(items: &[Value], long: bool, out: OutputArgs) -> Done {
    let mut headers = vec!["ID", "Type"];
    let mut keys = vec!["id", "type"];
    if long {
        headers.push("Rules");
        keys.push("blob");
    }
    let rows = items
        .iter()
        .map(|v| keys.iter().map(|k| Cell::from(v.field(k))).collect())
        .collect();
    Done::Print(Output::list(&headers, rows), out)
}

pub async fn run(id: &Identity, cmd: PolicyCmd) -> CliResult<Done> {
    match cmd {
        PolicyCmd::Create {
            rules,
            policy_type,
            out,
        } => {
            let body = json!({"policy": {"blob": read_rules(&rules)?, "type": policy_type}});
            let made = id
                .call(Method::POST, &["policies"], &[], Some(body))
                .await?
                .unwrap_or(Value::Null);
            Ok(Done::Print(format_policy(&made.field("policy")), out))
        }
        PolicyCmd::Delete { policies } => delete(id, &policies).await,
        PolicyCmd::List { long, out } => Ok(listing(
            &id.list(&["policies"], "policies", &[]).await?,
            long,
            out,
        )),
        PolicyCmd::Show { policy, out } => {
            let p = id.get(&["policies", &policy], &[]).await?;
            Ok(Done::Print(format_policy(&p.field("policy")), out))
        }
        PolicyCmd::Set {
            policy,
            policy_type,
            rules,
        } => {
            let mut body = Map::new();
            if let Some(r) = rules {
                body.insert("blob".into(), json!(read_rules(&r)?));
            }
            if let Some(t) = policy_type {
                body.insert("type".into(), json!(t));
            }
            id.call(
                Method::PATCH,
                &["policies", &policy],
                &[],
                Some(json!({ "policy": body })),
            )
            .await?;
            Ok(Done::Nothing)
        }
    }
}
