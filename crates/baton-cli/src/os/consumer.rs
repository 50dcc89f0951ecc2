//! `consumer create|delete|list|show|set` (openstackclient `identity/v3/consumer.py`, over
//! keystoneclient): OAuth1 consumers, printed as openstackclient prints them (every attribute
//! but `links`, sorted; the secret only when created).

use baton_client::Method;
use clap::Subcommand;
use serde_json::{json, Map};

use super::api::CallError;
use super::output::{Cell, Output, OutputArgs, Value};
use super::{delete_each, CliError, CliResult, Done, Identity};

const CONSUMERS: [&str; 2] = ["OS-OAUTH1", "consumers"];

#[derive(Debug, Subcommand)]
pub enum ConsumerCmd {
    /// Create new consumer.
    Create {
        /// New consumer description.
        #[arg(long)]
        description: Option<String>,
        #[command(flatten)]
        out: OutputArgs,
    },
    /// Delete consumer(s).
    Delete {
        /// Consumer(s) to delete.
        #[arg(required = true, value_name = "CONSUMER")]
        consumers: Vec<String>,
    },
    /// List consumers.
    List {
        #[command(flatten)]
        out: OutputArgs,
    },
    /// Set consumer properties.
    Set {
        /// Consumer to modify.
        #[arg(value_name = "CONSUMER")]
        consumer: String,
        /// New consumer description.
        #[arg(long)]
        description: Option<String>,
    },
    /// Display consumer details.
    Show {
        /// Consumer to display.
        #[arg(value_name = "CONSUMER")]
        consumer: String,
        #[command(flatten)]
        out: OutputArgs,
    },
}

/// Every attribute but `links`, sorted by name.
fn format_consumer(c: &Value) -> Output {
    let mut fields: Vec<(String, Cell)> = match c {
        Value::Object(items) => items
            .iter()
            .filter(|(k, _)| k != "links")
            .map(|(k, v)| (k.clone(), Cell::from(v.clone())))
            .collect(),
        _ => Vec::new(),
    };
    fields.sort_by(|a, b| a.0.cmp(&b.0));
    Output::One(fields)
}

/// osc-lib's `find_resource` for a consumer: by id (consumers have no names).
async fn find(id: &Identity, consumer: &str) -> CliResult<Value> {
    match id.get(&[CONSUMERS[0], CONSUMERS[1], consumer], &[]).await {
        Ok(v) => Ok(v.field("consumer")),
        Err(CallError::Api(a)) if a.status == 404 => Err(CliError(format!(
            "No consumer with a name or ID of '{consumer}' exists."
        ))),
        Err(e) => Err(e.into()),
    }
}

pub async fn run(id: &Identity, cmd: ConsumerCmd) -> CliResult<Done> {
    match cmd {
        ConsumerCmd::Create { description, out } => {
            // keystoneclient drops a description that is not given.
            let mut body = Map::new();
            if let Some(d) = description {
                body.insert("description".into(), json!(d));
            }
            let made = id
                .call(
                    Method::POST,
                    &CONSUMERS,
                    &[],
                    Some(json!({ "consumer": body })),
                )
                .await?
                .unwrap_or(Value::Null);
            Ok(Done::Print(format_consumer(&made.field("consumer")), out))
        }
        ConsumerCmd::Delete { consumers } => {
            delete_each(
                &consumers,
                "consumer with name or ID",
                "consumers",
                |c| async move {
                    let found = find(id, &c).await?;
                    let cid = found.str_field("id").unwrap_or(&c).to_string();
                    id.call(
                        Method::DELETE,
                        &[CONSUMERS[0], CONSUMERS[1], &cid],
                        &[],
                        None,
                    )
                    .await?;
                    Ok(())
                },
            )
            .await
        }
        ConsumerCmd::List { out } => {
            let items = id.list(&CONSUMERS, "consumers", &[]).await?;
            let rows = items
                .iter()
                .map(|c| {
                    vec![
                        Cell::from(c.field("id")),
                        Cell::from(c.field("description")),
                    ]
                })
                .collect();
            Ok(Done::Print(Output::list(&["ID", "Description"], rows), out))
        }
        ConsumerCmd::Set {
            consumer,
            description,
        } => {
            let found = find(id, &consumer).await?;
            let cid = found.str_field("id").unwrap_or(&consumer).to_string();
            // Only a description that is given and not empty is sent, as openstackclient does
            // (so a bare `set` is the server's 400).
            let mut body = Map::new();
            if let Some(d) = description.filter(|d| !d.is_empty()) {
                body.insert("description".into(), json!(d));
            }
            id.call(
                Method::PATCH,
                &[CONSUMERS[0], CONSUMERS[1], &cid],
                &[],
                Some(json!({ "consumer": body })),
            )
            .await?;
            Ok(Done::Nothing)
        }
        ConsumerCmd::Show { consumer, out } => Ok(Done::Print(
            format_consumer(&find(id, &consumer).await?),
            out,
        )),
    }
}
