//! `identity provider`, `mapping` and `federation protocol` (openstackclient
//! `identity/v3/identity_provider.py`, `mapping.py`, `federation_protocol.py`): federation's
//! identity providers, their protocols and mappings, printed as openstackclient prints them.

use std::path::PathBuf;

use baton_client::Method;
use clap::Subcommand;
use serde_json::{json, Map};

use super::api::{CallError, Kind};
use super::output::{Cell, Output, OutputArgs, Value};
use super::project::Enable;
use super::{CliError, CliResult, Done, Identity};

const FED: &str = "OS-FEDERATION";
const IDPS: &str = "identity_providers";
const MAPPINGS: &str = "mappings";

#[derive(Debug, Subcommand)]
pub enum IdentityCmd {
    /// Identity providers (openstack identity provider ...).
    Provider {
        #[command(subcommand)]
        cmd: IdentityProviderCmd,
    },
}

/// `--remote-id` (repeatable) or `--remote-id-file` (one per line).
#[derive(Debug, clap::Args)]
#[group(multiple = false)]
pub struct RemoteIds {
    /// Remote IDs to associate with the Identity Provider (repeat option to provide multiple
    /// values).
    #[arg(long = "remote-id", value_name = "REMOTE_ID")]
    remote_ids: Vec<String>,
    /// Name of a file that contains many remote IDs to associate with the identity provider,
    /// one per line.
    #[arg(long, value_name = "FILE_NAME")]
    remote_id_file: Option<PathBuf>,
}

impl RemoteIds {
    fn value(&self) -> CliResult<Option<Vec<String>>> {
        if let Some(path) = &self.remote_id_file {
            let text = std::fs::read_to_string(path).map_err(|e| {
                CliError(format!(
                    "Error occurred trying to read from file {}: {e}",
                    path.display()
                ))
            })?;
            return Ok(Some(text.lines().map(|l| l.trim().to_string()).collect()));
        }
        Ok((!self.remote_ids.is_empty()).then(|| self.remote_ids.clone()))
    }
}

#[derive(Debug, Subcommand)]
pub enum IdentityProviderCmd {
    /// Create new identity provider.
    Create {
        /// New identity provider name (must be unique).
        #[arg(value_name = "NAME")]
        id: String,
        #[command(flatten)]
        remote: RemoteIds,
        /// New identity provider description.
        #[arg(long)]
        description: Option<String>,
        /// Domain to associate with the identity provider (name or ID); without it a domain is
        /// created for it.
        #[arg(long)]
        domain: Option<String>,
        /// Time to keep the role assignments for users authenticating via this identity
        /// provider.
        #[arg(long, allow_negative_numbers = true)]
        authorization_ttl: Option<i64>,
        #[command(flatten)]
        enable: Enable,
        #[command(flatten)]
        out: OutputArgs,
    },
    /// Delete identity provider(s).
    Delete {
        /// Identity provider(s) to delete.
        #[arg(required = true, value_name = "IDENTITY_PROVIDER")]
        providers: Vec<String>,
    },
    /// List identity providers.
    List {
        /// Filter identity providers by ID.
        #[arg(long)]
        id: Option<String>,
        /// List only enabled identity providers.
        #[arg(long)]
        enabled: bool,
        #[command(flatten)]
        out: OutputArgs,
    },
    /// Set identity provider properties.
    Set {
        /// Identity provider to modify.
        #[arg(value_name = "IDENTITY_PROVIDER")]
        provider: String,
        /// Set identity provider description.
        #[arg(long)]
        description: Option<String>,
        #[command(flatten)]
        remote: RemoteIds,
        /// Time to keep the role assignments for users authenticating via this identity
        /// provider.
        #[arg(long, allow_negative_numbers = true)]
        authorization_ttl: Option<i64>,
        #[command(flatten)]
        enable: Enable,
    },
    /// Display identity provider details.
    Show {
        /// Identity provider to display.
        #[arg(value_name = "IDENTITY_PROVIDER")]
        provider: String,
        #[command(flatten)]
        out: OutputArgs,
    },
}

/// openstackclient's `_format_identity_provider` (remote ids as its `ListColumn`: sorted and
/// comma-joined in a table, the list in JSON).
fn format_idp(idp: &Value) -> Output {
    let remote = idp.field("remote_ids");
    let mut shown: Vec<&str> = remote.as_array().iter().filter_map(Value::as_str).collect();
    shown.sort_unstable();
    let cells = vec![
        (
            "authorization_ttl".to_string(),
            Cell::from(idp.field("authorization_ttl")),
        ),
        (
            "description".to_string(),
            Cell::from(idp.field("description")),
        ),
        ("domain_id".to_string(), Cell::from(idp.field("domain_id"))),
        ("enabled".to_string(), Cell::from(idp.field("enabled"))),
        ("id".to_string(), Cell::from(idp.field("id"))),
        (
            "remote_ids".to_string(),
            Cell {
                value: remote.clone(),
                human: Some(shown.join(", ")),
            },
        ),
    ];
    Output::One(cells)
}

fn check_ttl(ttl: Option<i64>) -> CliResult<()> {
    match ttl {
        Some(t) if t < 0 => Err(CliError(
            "authorization-ttl must be positive integer or zero.".into(),
        )),
        _ => Ok(()),
    }
}

/// Deletes each of `ids` under `path` (`what`: the noun, one and many).
async fn delete_under(
    id: &Identity,
    path: &[&str],
    ids: &[String],
    what: (&str, &str),
) -> CliResult<Done> {
    let noun = format!("{} with name or ID", what.0);
    super::delete_each(ids, &noun, what.1, |one| async move {
        let mut at = path.to_vec();
        at.push(&one);
        id.call(Method::DELETE, &at, &[], None).await?;
        Ok(())
    })
    .await
}

/// openstacksdk's `get`: a 404 names the resource, then the server's answer.
async fn get_one(id: &Identity, path: &[&str], class: &str, name: &str) -> CliResult<Value> {
    match id.get(path, &[]).await {
        Ok(v) => Ok(v),
        Err(CallError::Api(a)) if a.status == 404 => Err(CliError(format!(
            "No {class} found for {name}: Client Error for url: {}, {}",
            a.url, a.message
        ))),
        Err(e) => Err(e.into()),
    }
}

/// The attributes `identity provider create` and `set` send: only those given (a
/// description only when not empty), the TTL checked first.
fn idp_body(
    enabled: Option<bool>,
    description: Option<String>,
    remote: &RemoteIds,
    authorization_ttl: Option<i64>,
) -> CliResult<Map<String, serde_json::Value>> {
    let mut body = Map::new();
    if let Some(e) = enabled {
        body.insert("enabled".into(), json!(e));
    }
    if let Some(d) = description.filter(|d| !d.is_empty()) {
        body.insert("description".into(), json!(d));
    }
    if let Some(r) = remote.value()? {
        body.insert("remote_ids".into(), json!(r));
    }
    check_ttl(authorization_ttl)?;
    if let Some(t) = authorization_ttl {
        body.insert("authorization_ttl".into(), json!(t));
    }
    Ok(body)
}

async fn list_idps(
    id: &Identity,
    only: Option<String>,
    enabled: bool,
    out: OutputArgs,
) -> CliResult<Done> {
    let mut query = Vec::new();
    if let Some(i) = only {
        query.push(("id", i));
    }
    if enabled {
        query.push(("enabled", "True".to_string()));
    }
    let items = id.list(&[FED, IDPS], IDPS, &query).await?;
    let rows = items
        .iter()
        .map(|v| {
            ["id", "enabled", "domain_id", "description"]
                .iter()
                .map(|k| Cell::from(v.field(k)))
                .collect()
        })
        .collect();
    let headers = ["ID", "Enabled", "Domain ID", "Description"];
    Ok(Done::Print(Output::list(&headers, rows), out))
}

pub async fn run_identity(id: &Identity, cmd: IdentityCmd) -> CliResult<Done> {
    let IdentityCmd::Provider { cmd } = cmd;
    match cmd {
        IdentityProviderCmd::Create {
            id: idp,
            remote,
            description,
            domain,
            authorization_ttl,
            enable,
            out,
        } => {
            // openstackclient enables a new identity provider unless told otherwise.
            let mut body = idp_body(
                Some(!enable.disabled()),
                description,
                &remote,
                authorization_ttl,
            )?;
            if let Some(d) = domain {
                body.insert(
                    "domain_id".into(),
                    json!(id.find_id(Kind::Domain, &d, &[], false).await?),
                );
            }
            let made = id
                .call(
                    Method::PUT,
                    &[FED, IDPS, &idp],
                    &[],
                    Some(json!({ "identity_provider": body })),
                )
                .await?
                .unwrap_or(Value::Null);
            Ok(Done::Print(
                format_idp(&made.field("identity_provider")),
                out,
            ))
        }
        IdentityProviderCmd::Delete { providers } => {
            delete_under(
                id,
                &[FED, IDPS],
                &providers,
                ("identity provider", "identity providers"),
            )
            .await
        }
        IdentityProviderCmd::List {
            id: only,
            enabled,
            out,
        } => list_idps(id, only, enabled, out).await,
        IdentityProviderCmd::Set {
            provider,
            description,
            remote,
            authorization_ttl,
            enable,
        } => {
            let body = idp_body(enable.value(), description, &remote, authorization_ttl)?;
            id.call(
                Method::PATCH,
                &[FED, IDPS, &provider],
                &[],
                Some(json!({ "identity_provider": body })),
            )
            .await?;
            Ok(Done::Nothing)
        }
        IdentityProviderCmd::Show { provider, out } => {
            let idp = get_one(id, &[FED, IDPS, &provider], "IdentityProvider", &provider).await?;
            Ok(Done::Print(
                format_idp(&idp.field("identity_provider")),
                out,
            ))
        }
    }
}

// ----- mappings --------------------------------------------------------------------------------

#[derive(Debug, Subcommand)]
pub enum MappingCmd {
    /// Create new mapping.
    Create {
        /// New mapping name (must be unique).
        #[arg(value_name = "NAME")]
        mapping: String,
        /// Filename that contains a set of mapping rules (required).
        #[arg(long, value_name = "FILENAME", required = true)]
        rules: PathBuf,
        /// The federated attribute mapping schema version (the server's default when not
        /// given).
        #[arg(long)]
        schema_version: Option<String>,
        #[command(flatten)]
        out: OutputArgs,
    },
    /// Delete mapping(s).
    Delete {
        /// Mapping(s) to delete.
        #[arg(required = true, value_name = "MAPPING")]
        mappings: Vec<String>,
    },
    /// List mappings.
    List {
        #[command(flatten)]
        out: OutputArgs,
    },
    /// Set mapping properties.
    Set {
        /// Mapping to modify.
        #[arg(value_name = "NAME")]
        mapping: String,
        /// Filename that contains a new set of mapping rules.
        #[arg(long, value_name = "FILENAME", required = true)]
        rules: PathBuf,
        /// The federated attribute mapping schema version.
        #[arg(long)]
        schema_version: Option<String>,
    },
    /// Display mapping details.
    Show {
        /// Mapping to display.
        #[arg(value_name = "MAPPING")]
        mapping: String,
        #[command(flatten)]
        out: OutputArgs,
    },
}

/// openstackclient's `_read_rules`: the file's JSON.
fn read_rules(path: &PathBuf) -> CliResult<serde_json::Value> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        CliError(format!(
            "Error occurred trying to read from file {}: {e}",
            path.display()
        ))
    })?;
    serde_json::from_str(&text).map_err(|e| {
        CliError(format!(
            "An error occurred when reading rules from file {}: {e}",
            path.display()
        ))
    })
}

fn format_mapping(m: &Value) -> Output {
    Output::one(
        ["id", "rules", "schema_version"]
            .into_iter()
            .map(|k| (k, m.field(k))),
    )
}

pub async fn run_mapping(id: &Identity, cmd: MappingCmd) -> CliResult<Done> {
    match cmd {
        MappingCmd::Create {
            mapping,
            rules,
            schema_version,
            out,
        } => {
            let body = json!({"mapping": {"rules": read_rules(&rules)?, "schema_version": schema_version}});
            let made = id
                .call(Method::PUT, &[FED, MAPPINGS, &mapping], &[], Some(body))
                .await?
                .unwrap_or(Value::Null);
            Ok(Done::Print(format_mapping(&made.field("mapping")), out))
        }
        MappingCmd::Delete { mappings } => {
            delete_under(id, &[FED, MAPPINGS], &mappings, ("mapping", "mappings")).await
        }
        MappingCmd::List { out } => {
            let items = id.list(&[FED, MAPPINGS], MAPPINGS, &[]).await?;
            let rows = items
                .iter()
                .map(|v| {
                    vec![
                        Cell::from(v.field("id")),
                        Cell::from(v.field("schema_version")),
                    ]
                })
                .collect();
            Ok(Done::Print(
                Output::list(&["ID", "schema_version"], rows),
                out,
            ))
        }
        MappingCmd::Set {
            mapping,
            rules,
            schema_version,
        } => {
            let body = json!({"mapping": {"rules": read_rules(&rules)?, "schema_version": schema_version}});
            id.call(Method::PATCH, &[FED, MAPPINGS, &mapping], &[], Some(body))
                .await?;
            Ok(Done::Nothing)
        }
        MappingCmd::Show { mapping, out } => {
            let m = get_one(id, &[FED, MAPPINGS, &mapping], "Mapping", &mapping).await?;
            Ok(Done::Print(format_mapping(&m.field("mapping")), out))
        }
    }
}

// ----- federation protocols --------------------------------------------------------------------

#[derive(Debug, Subcommand)]
pub enum FederationCmd {
    /// Federation protocols of identity providers (openstack federation protocol ...).
    Protocol {
        #[command(subcommand)]
        cmd: ProtocolCmd,
    },
}

#[derive(Debug, Subcommand)]
pub enum ProtocolCmd {
    /// Create new federation protocol.
    Create {
        /// New federation protocol name (must be unique per identity provider).
        #[arg(value_name = "NAME")]
        protocol: String,
        /// Identity provider that will support the new federation protocol (required).
        #[arg(long, required = true)]
        identity_provider: String,
        /// Mapping that is to be used (required).
        #[arg(long, required = true)]
        mapping: String,
        #[command(flatten)]
        out: OutputArgs,
    },
    /// Delete federation protocol(s).
    Delete {
        /// Federation protocol(s) to delete.
        #[arg(required = true, value_name = "FEDERATION_PROTOCOL")]
        protocols: Vec<String>,
        /// Identity provider that supports the protocol(s) (required).
        #[arg(long, required = true)]
        identity_provider: String,
    },
    /// List federation protocols.
    List {
        /// Identity provider to list (required).
        #[arg(long, required = true)]
        identity_provider: String,
        #[command(flatten)]
        out: OutputArgs,
    },
    /// Set federation protocol properties.
    Set {
        /// Federation protocol to modify.
        #[arg(value_name = "NAME")]
        protocol: String,
        /// Identity provider that supports the protocol (required).
        #[arg(long, required = true)]
        identity_provider: String,
        /// Mapping that is to be used.
        #[arg(long)]
        mapping: Option<String>,
    },
    /// Display federation protocol details.
    Show {
        /// Federation protocol to display.
        #[arg(value_name = "FEDERATION_PROTOCOL")]
        protocol: String,
        /// Identity provider that supports the protocol (required).
        #[arg(long, required = true)]
        identity_provider: String,
        #[command(flatten)]
        out: OutputArgs,
    },
}

/// openstackclient's `_format_protocol`: the identity provider is the one named on the command
/// line (the SDK takes it from the path).
fn format_protocol(p: &Value, idp: &str) -> Output {
    Output::one([
        ("id", p.field("id")),
        ("identity_provider", Value::String(idp.to_string())),
        ("mapping", p.field("mapping_id")),
    ])
}

async fn list_protocols(id: &Identity, idp: &str, out: OutputArgs) -> CliResult<Done> {
    let items = id
        .list(&[FED, IDPS, idp, "protocols"], "protocols", &[])
        .await?;
    let rows = items
        .iter()
        .map(|v| vec![Cell::from(v.field("id")), Cell::from(v.field("mapping_id"))])
        .collect();
    Ok(Done::Print(Output::list(&["id", "mapping"], rows), out))
}

pub async fn run_federation(id: &Identity, cmd: FederationCmd) -> CliResult<Done> {
    let FederationCmd::Protocol { cmd } = cmd;
    match cmd {
        ProtocolCmd::Create {
            protocol,
            identity_provider: idp,
            mapping,
            out,
        } => {
            let made = id
                .call(
                    Method::PUT,
                    &[FED, IDPS, &idp, "protocols", &protocol],
                    &[],
                    Some(json!({"protocol": {"mapping_id": mapping}})),
                )
                .await?
                .unwrap_or(Value::Null);
            Ok(Done::Print(
                format_protocol(&made.field("protocol"), &idp),
                out,
            ))
        }
        ProtocolCmd::Delete {
            protocols,
            identity_provider: idp,
        } => {
            delete_under(
                id,
                &[FED, IDPS, &idp, "protocols"],
                &protocols,
                ("federation protocol", "federation protocols"),
            )
            .await
        }
        ProtocolCmd::List {
            identity_provider: idp,
            out,
        } => list_protocols(id, &idp, out).await,
        ProtocolCmd::Set {
            protocol,
            identity_provider: idp,
            mapping,
        } => {
            let mut body = Map::new();
            if let Some(m) = mapping {
                body.insert("mapping_id".into(), json!(m));
            }
            id.call(
                Method::PATCH,
                &[FED, IDPS, &idp, "protocols", &protocol],
                &[],
                Some(json!({ "protocol": body })),
            )
            .await?;
            Ok(Done::Nothing)
        }
        ProtocolCmd::Show {
            protocol,
            identity_provider: idp,
            out,
        } => {
            let p = get_one(
                id,
                &[FED, IDPS, &idp, "protocols", &protocol],
                "FederationProtocol",
                &protocol,
            )
            .await?;
            Ok(Done::Print(
                format_protocol(&p.field("protocol"), &idp),
                out,
            ))
        }
    }
}
