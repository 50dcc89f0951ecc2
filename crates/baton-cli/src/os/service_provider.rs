//! `service provider create|delete|list|show|set` (openstackclient
//! `identity/v3/service_provider.py`): federation service providers, printed as
//! openstackclient prints them.

use baton_client::Method;
use clap::Subcommand;
use serde_json::{json, Map};

use super::api::CallError;
use super::output::{Cell, Output, OutputArgs, Value};
use super::project::Enable;
use super::{CliError, CliResult, Done, Identity};

const SPS: [&str; 2] = ["OS-FEDERATION", "service_providers"];

#[derive(Debug, Subcommand)]
pub enum ServiceProviderCmd {
    /// Create new service provider.
    Create {
        /// New service provider name (must be unique).
        #[arg(value_name = "NAME")]
        id: String,
        /// Authentication URL of remote federated service provider (required).
        #[arg(long, required = true)]
        auth_url: String,
        /// New service provider description.
        #[arg(long)]
        description: Option<String>,
        /// A service URL where SAML assertions are being sent (required).
        #[arg(long = "service-provider-url", value_name = "SP_URL", required = true)]
        sp_url: String,
        #[command(flatten)]
        enable: Enable,
        #[command(flatten)]
        out: OutputArgs,
    },
    /// Delete service provider(s).
    Delete {
        /// Service provider(s) to delete.
        #[arg(required = true, value_name = "SERVICE_PROVIDER")]
        providers: Vec<String>,
    },
    /// List service providers.
    List {
        #[command(flatten)]
        out: OutputArgs,
    },
    /// Display service provider details.
    Show {
        /// Service provider to display.
        #[arg(value_name = "SERVICE_PROVIDER")]
        provider: String,
        #[command(flatten)]
        out: OutputArgs,
    },
    /// Set service provider properties.
    Set {
        /// Service provider to modify.
        #[arg(value_name = "SERVICE_PROVIDER")]
        provider: String,
        /// New Authentication URL of remote federated service provider.
        #[arg(long)]
        auth_url: Option<String>,
        /// New service provider description.
        #[arg(long)]
        description: Option<String>,
        /// New service provider URL, where SAML assertions are sent.
        #[arg(long = "service-provider-url", value_name = "SP_URL")]
        sp_url: Option<String>,
        #[command(flatten)]
        enable: Enable,
        #[command(flatten)]
        out: OutputArgs,
    },
}

const COLUMNS: [&str; 6] = [
    "id",
    "enabled",
    "description",
    "auth_url",
    "sp_url",
    "relay_state_prefix",
];

/// openstackclient's `_format_service_provider`.
fn format_sp(sp: &Value) -> Output {
    Output::one(COLUMNS.into_iter().map(|k| (k, sp.field(k))))
}

/// The attributes `create` and `set` send: only those given (a description only when not
/// empty, as openstackclient).
fn attributes(
    enabled: Option<bool>,
    description: Option<String>,
    auth_url: Option<String>,
    sp_url: Option<String>,
) -> Map<String, serde_json::Value> {
    let mut body = Map::new();
    if let Some(e) = enabled {
        body.insert("enabled".into(), json!(e));
    }
    if let Some(d) = description.filter(|d| !d.is_empty()) {
        body.insert("description".into(), json!(d));
    }
    if let Some(u) = auth_url.filter(|u| !u.is_empty()) {
        body.insert("auth_url".into(), json!(u));
    }
    if let Some(u) = sp_url.filter(|u| !u.is_empty()) {
        body.insert("sp_url".into(), json!(u));
    }
    body
}

async fn delete(id: &Identity, providers: &[String]) -> CliResult<Done> {
    super::delete_each(
        providers,
        "service provider with name or ID",
        "service providers",
        |p| async move {
            id.call(Method::DELETE, &[SPS[0], SPS[1], &p], &[], None)
                .await?;
            Ok(())
        },
    )
    .await
}

fn listing(items: &[Value], out: OutputArgs) -> Done {
    let rows = items
        .iter()
        .map(|v| COLUMNS.iter().map(|k| Cell::from(v.field(k))).collect())
        .collect();
    let headers = [
        "ID",
        "Enabled",
        "Description",
        "Auth URL",
        "Service Provider URL",
        "Relay State Prefix",
    ];
    Done::Print(Output::list(&headers, rows), out)
}

/// A `PUT` or `PATCH` of `{"service_provider": body}`, printing the result.
async fn write(
    id: &Identity,
    method: Method,
    sp: &str,
    body: Map<String, serde_json::Value>,
    out: OutputArgs,
) -> CliResult<Done> {
    let made = id
        .call(
            method,
            &[SPS[0], SPS[1], sp],
            &[],
            Some(json!({ "service_provider": body })),
        )
        .await?
        .unwrap_or(Value::Null);
    Ok(Done::Print(format_sp(&made.field("service_provider")), out))
}

pub async fn run(id: &Identity, cmd: ServiceProviderCmd) -> CliResult<Done> {
    match cmd {
        ServiceProviderCmd::Create {
            id: sp,
            auth_url,
            description,
            sp_url,
            enable,
            out,
        } => {
            // openstackclient enables a new service provider unless told otherwise.
            let enabled = enable.value().unwrap_or(true);
            let body = attributes(Some(enabled), description, Some(auth_url), Some(sp_url));
            write(id, Method::PUT, &sp, body, out).await
        }
        ServiceProviderCmd::Delete { providers } => delete(id, &providers).await,
        ServiceProviderCmd::List { out } => Ok(listing(
            &id.list(&SPS, "service_providers", &[]).await?,
            out,
        )),
        ServiceProviderCmd::Show { provider, out } => {
            // openstacksdk's find: a 404 is its own message.
            let sp = match id.get(&[SPS[0], SPS[1], &provider], &[]).await {
                Ok(sp) => sp,
                Err(CallError::Api(a)) if a.status == 404 => {
                    return Err(CliError(format!("No ServiceProvider found for {provider}")))
                }
                Err(e) => return Err(e.into()),
            };
            Ok(Done::Print(format_sp(&sp.field("service_provider")), out))
        }
        ServiceProviderCmd::Set {
            provider,
            auth_url,
            description,
            sp_url,
            enable,
            out,
        } => {
            let body = attributes(enable.value(), description, auth_url, sp_url);
            write(id, Method::PATCH, &provider, body, out).await
        }
    }
}
