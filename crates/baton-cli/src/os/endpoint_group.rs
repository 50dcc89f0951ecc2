//! `endpoint group create|delete|list|show|set|add project|remove project` (openstackclient
//! `identity/v3/endpoint_group.py`): endpoint filtering's groups, printed as openstackclient
//! prints them.

use baton_client::Method;
use clap::{Args, Subcommand};
use serde_json::{json, Map};

use super::api::{CallError, Kind};
use super::output::{Cell, Output, OutputArgs, Value};
use super::trust::in_domain;
use super::{CliError, CliResult, Done, Identity};

const GROUPS: [&str; 2] = ["OS-EP-FILTER", "endpoint_groups"];

#[derive(Debug, Subcommand)]
pub enum EndpointGroupCmd {
    /// Create new endpoint group.
    Create {
        /// Name of the endpoint group.
        name: String,
        /// Filename that contains a new set of filters.
        #[arg(value_name = "FILENAME")]
        filters: String,
        /// Description of the endpoint group.
        #[arg(long)]
        description: Option<String>,
        #[command(flatten)]
        out: OutputArgs,
    },
    /// Delete endpoint group(s).
    Delete {
        /// Endpoint group(s) to delete (name or ID).
        #[arg(required = true, value_name = "ENDPOINT_GROUP")]
        groups: Vec<String>,
    },
    /// List endpoint groups.
    List {
        /// Endpoint group (name or ID): list its projects.
        #[arg(long, conflicts_with = "project")]
        endpointgroup: Option<String>,
        /// Project (name or ID): list its endpoint groups.
        #[arg(long)]
        project: Option<String>,
        /// Domain owning the project (name or ID).
        #[arg(long)]
        domain: Option<String>,
        #[command(flatten)]
        out: OutputArgs,
    },
    /// Display endpoint group details.
    Show {
        /// Endpoint group (name or ID).
        #[arg(value_name = "ENDPOINTGROUP")]
        group: String,
        #[command(flatten)]
        out: OutputArgs,
    },
    /// Set endpoint group properties.
    Set {
        /// Endpoint group to modify (name or ID).
        #[arg(value_name = "ENDPOINT_GROUP")]
        group: String,
        /// New endpoint group name.
        #[arg(long)]
        name: Option<String>,
        /// Filename that contains a new set of filters.
        #[arg(long, value_name = "FILENAME")]
        filters: Option<String>,
        /// New endpoint group description.
        #[arg(long)]
        description: Option<String>,
    },
    /// Add a project to an endpoint group.
    Add {
        #[command(subcommand)]
        what: Membership,
    },
    /// Remove a project from an endpoint group.
    Remove {
        #[command(subcommand)]
        what: Membership,
    },
}

#[derive(Debug, Subcommand)]
pub enum Membership {
    /// The project (of `add project` / `remove project`).
    Project(ProjectArgs),
}

#[derive(Debug, Args)]
pub struct ProjectArgs {
    /// Endpoint group (name or ID).
    #[arg(value_name = "ENDPOINT_GROUP")]
    group: String,
    /// Project (name or ID).
    project: String,
    /// Domain the project belongs to (name or ID).
    #[arg(long)]
    project_domain: Option<String>,
}

/// openstackclient's `_format_endpoint_group`.
fn format_group(g: &Value) -> Output {
    Output::one(
        ["description", "filters", "id", "name"]
            .into_iter()
            .map(|k| (k, g.field(k))),
    )
}

/// openstacksdk's `find_endpoint_group`: by id, else by name among all groups.
async fn find_group(id: &Identity, name_or_id: &str) -> CliResult<Value> {
    match id.get(&[GROUPS[0], GROUPS[1], name_or_id], &[]).await {
        Ok(v) => return Ok(v.field("endpoint_group")),
        Err(CallError::Api(a)) if matches!(a.status, 400 | 403 | 404) => {}
        Err(e) => return Err(e.into()),
    }
    let all = id.list(&GROUPS, "endpoint_groups", &[]).await?;
    let hits: Vec<&Value> = all
        .iter()
        .filter(|g| {
            g.str_field("id") == Some(name_or_id) || g.str_field("name") == Some(name_or_id)
        })
        .collect();
    match hits.as_slice() {
        [one] => Ok((*one).clone()),
        [] => Err(CliError(format!("No EndpointGroup found for {name_or_id}"))),
        _ => Err(CliError(format!(
            "More than one EndpointGroup exists with the name '{name_or_id}'."
        ))),
    }
}

/// openstackclient's `_read_filters`: a JSON file.
fn read_filters(path: &str) -> CliResult<serde_json::Value> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        CliError(format!(
            "Error occurred trying to read from file {path}: {e}"
        ))
    })?;
    serde_json::from_str(&text).map_err(|e| {
        CliError(format!(
            "An error occurred when reading filters from file {path}: {e}"
        ))
    })
}

fn group_id(g: &Value) -> String {
    g.str_field("id").unwrap_or_default().to_string()
}

async fn project_of(id: &Identity, a: &ProjectArgs) -> CliResult<String> {
    in_domain(id, Kind::Project, &a.project, &a.project_domain).await
}

/// `ID`, `Name`, `Description` of each item, as every `endpoint group list` prints them.
fn listing(items: &[Value], out: OutputArgs) -> Done {
    let rows = items
        .iter()
        .map(|v| {
            ["id", "name", "description"]
                .iter()
                .map(|k| Cell::from(v.field(k)))
                .collect()
        })
        .collect();
    Done::Print(Output::list(&["ID", "Name", "Description"], rows), out)
}

async fn delete(id: &Identity, groups: &[String]) -> CliResult<Done> {
    super::delete_each(
        groups,
        "endpoint group with ID",
        "endpointgroups",
        |g| async move {
            let gid = group_id(&find_group(id, &g).await?);
            id.call(Method::DELETE, &[GROUPS[0], GROUPS[1], &gid], &[], None)
                .await?;
            Ok(())
        },
    )
    .await
}

/// All groups, a group's projects (`--endpointgroup`) or a project's groups (`--project`).
async fn list(
    id: &Identity,
    endpointgroup: Option<String>,
    project: Option<String>,
    domain: Option<String>,
) -> CliResult<Vec<Value>> {
    Ok(if let Some(g) = endpointgroup {
        let gid = group_id(&find_group(id, &g).await?);
        id.list(&[GROUPS[0], GROUPS[1], &gid, "projects"], "projects", &[])
            .await?
    } else if let Some(p) = project {
        let pid = in_domain(id, Kind::Project, &p, &domain).await?;
        id.list(
            &[GROUPS[0], "projects", &pid, "endpoint_groups"],
            "endpoint_groups",
            &[],
        )
        .await?
    } else {
        id.list(&GROUPS, "endpoint_groups", &[]).await?
    })
}

/// `add project` (PUT) or `remove project` (DELETE).
async fn membership(id: &Identity, method: Method, a: &ProjectArgs) -> CliResult<Done> {
    let gid = group_id(&find_group(id, &a.group).await?);
    let pid = project_of(id, a).await?;
    id.call(
        method,
        &[GROUPS[0], GROUPS[1], &gid, "projects", &pid],
        &[],
        None,
    )
    .await?;
    Ok(Done::Nothing)
}

async fn set(
    id: &Identity,
    group: &str,
    name: Option<String>,
    filters: Option<String>,
    description: Option<String>,
) -> CliResult<Done> {
    let gid = group_id(&find_group(id, group).await?);
    let mut body = Map::new();
    if let Some(n) = name {
        body.insert("name".into(), json!(n));
    }
    if let Some(f) = filters {
        body.insert("filters".into(), read_filters(&f)?);
    }
    if let Some(d) = description {
        body.insert("description".into(), json!(d));
    }
    id.call(
        Method::PATCH,
        &[GROUPS[0], GROUPS[1], &gid],
        &[],
        Some(json!({ "endpoint_group": body })),
    )
    .await?;
    Ok(Done::Nothing)
}

pub async fn run(id: &Identity, cmd: EndpointGroupCmd) -> CliResult<Done> {
    match cmd {
        EndpointGroupCmd::Create {
            name,
            filters,
            description,
            out,
        } => {
            let body = json!({"endpoint_group": {
                "name": name,
                "filters": read_filters(&filters)?,
                "description": description,
            }});
            let made = id
                .call(Method::POST, &GROUPS, &[], Some(body))
                .await?
                .unwrap_or(Value::Null);
            Ok(Done::Print(
                format_group(&made.field("endpoint_group")),
                out,
            ))
        }
        EndpointGroupCmd::Delete { groups } => delete(id, &groups).await,
        EndpointGroupCmd::List {
            endpointgroup,
            project,
            domain,
            out,
        } => Ok(listing(
            &list(id, endpointgroup, project, domain).await?,
            out,
        )),
        EndpointGroupCmd::Show { group, out } => Ok(Done::Print(
            format_group(&find_group(id, &group).await?),
            out,
        )),
        EndpointGroupCmd::Set {
            group,
            name,
            filters,
            description,
        } => set(id, &group, name, filters, description).await,
        EndpointGroupCmd::Add {
            what: Membership::Project(a),
        } => membership(id, Method::PUT, &a).await,
        EndpointGroupCmd::Remove {
            what: Membership::Project(a),
        } => membership(id, Method::DELETE, &a).await,
    }
}
