//! `service create|list|show`, `endpoint create|list|show` and `catalog list` (openstackclient
//! `identity/v3/service.py`, `endpoint.py`, `catalog.py`).

use std::collections::HashMap;

use clap::{Subcommand, ValueEnum};
use serde_json::json;

use baton_client::Method;

use super::api::Kind;
use super::output::{Cell, Output, OutputArgs, Value};
use super::project::Enable;
use super::trust::in_domain;
use super::{CliError, CliResult, Done, Identity};

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Iface {
    Admin,
    Public,
    Internal,
}

impl Iface {
    fn as_str(self) -> &'static str {
        match self {
            Iface::Admin => "admin",
            Iface::Public => "public",
            Iface::Internal => "internal",
        }
    }
}

#[derive(Debug, Subcommand)]
pub enum ServiceCmd {
    /// Federation service providers (openstack service provider ...).
    Provider {
        #[command(subcommand)]
        cmd: super::service_provider::ServiceProviderCmd,
    },
    /// Create new service.
    Create {
        /// New service type (compute, image, identity, volume, etc).
        #[arg(value_name = "TYPE")]
        service_type: String,
        /// New service name.
        #[arg(long)]
        name: Option<String>,
        /// New service description.
        #[arg(long)]
        description: Option<String>,
        #[command(flatten)]
        enable: Enable,
        #[command(flatten)]
        out: OutputArgs,
    },
    /// Display service details.
    Show {
        /// Service to display (type, name or ID).
        service: String,
        #[command(flatten)]
        out: OutputArgs,
    },
    /// List services.
    List {
        /// List additional fields in output.
        #[arg(long)]
        long: bool,
        #[command(flatten)]
        out: OutputArgs,
    },
}

#[derive(Debug, Subcommand)]
pub enum EndpointCmd {
    /// Endpoint groups (openstack endpoint group ...).
    Group {
        #[command(subcommand)]
        cmd: super::endpoint_group::EndpointGroupCmd,
    },
    /// Create new endpoint.
    Create {
        /// Service to be associated with new endpoint (name or ID).
        service: String,
        /// New endpoint interface type (admin, public or internal).
        #[arg(value_enum)]
        interface: Iface,
        /// New endpoint URL.
        url: String,
        /// New endpoint region ID.
        #[arg(long)]
        region: Option<String>,
        #[command(flatten)]
        enable: Enable,
        #[command(flatten)]
        out: OutputArgs,
    },
    /// List endpoints.
    List {
        /// Filter by service (type, name or ID).
        #[arg(long)]
        service: Option<String>,
        /// Filter by interface type (admin, public or internal).
        #[arg(long, value_enum)]
        interface: Option<Iface>,
        /// Filter by region ID.
        #[arg(long)]
        region: Option<String>,
        /// List the projects associated with this endpoint (ID).
        #[arg(long, conflicts_with = "project")]
        endpoint: Option<String>,
        /// List the endpoints associated with this project (name or ID).
        #[arg(long)]
        project: Option<String>,
        /// Domain owning the project (name or ID).
        #[arg(long)]
        project_domain: Option<String>,
        #[command(flatten)]
        out: OutputArgs,
    },
    /// Associate a project to an endpoint.
    Add {
        #[command(subcommand)]
        what: EndpointProject,
    },
    /// Dissociate a project from an endpoint.
    Remove {
        #[command(subcommand)]
        what: EndpointProject,
    },
}

/// `endpoint add project` / `endpoint remove project`.
#[derive(Debug, Subcommand)]
pub enum EndpointProject {
    /// The project to (dis)associate.
    Project {
        /// Endpoint (ID).
        endpoint: String,
        /// Project (name or ID).
        project: String,
        /// Domain owning the project (name or ID).
        #[arg(long)]
        project_domain: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum CatalogCmd {
    /// List services in the service catalog.
    List {
        #[command(flatten)]
        out: OutputArgs,
    },
}

/// openstackclient's `_format_service`.
fn format_service(s: &Value) -> Output {
    Output::one(
        ["id", "name", "type", "enabled", "description"]
            .into_iter()
            .map(|k| (k, s.field(k))),
    )
}

/// openstackclient's `_format_endpoint`: `region` repeats `region_id`.
fn format_endpoint(e: &Value, service: &Value) -> Output {
    Output::one([
        ("enabled", e.field("enabled")),
        ("id", e.field("id")),
        ("interface", e.field("interface")),
        ("region", e.field("region_id")),
        ("region_id", e.field("region_id")),
        ("service_id", e.field("service_id")),
        ("url", e.field("url")),
        ("service_name", service.field("name")),
        ("service_type", service.field("type")),
    ])
}

pub async fn run_service(id: &Identity, cmd: ServiceCmd) -> CliResult<Done> {
    match cmd {
        ServiceCmd::Provider { cmd } => super::service_provider::run(id, cmd).await,
        ServiceCmd::Create {
            service_type,
            name,
            description,
            enable,
            out,
        } => {
            // openstackclient sends `name: null` when --name is not given, which Keystone
            // refuses; Baton leaves it out and the service has no name.
            let mut body = serde_json::Map::new();
            if let Some(n) = name {
                body.insert("name".into(), json!(n));
            }
            body.insert("type".into(), json!(service_type));
            if let Some(d) = description {
                body.insert("description".into(), json!(d));
            }
            body.insert("enabled".into(), json!(!enable.disabled()));
            let s = id.create(Kind::Service, body.into()).await?;
            Ok(Done::Print(format_service(&s), out))
        }
        ServiceCmd::Show { service, out } => {
            let s = id.find_service(&service).await?;
            Ok(Done::Print(format_service(&s), out))
        }
        ServiceCmd::List { long, out } => {
            let services = id.list(&["services"], "services", &[]).await?;
            let (headers, keys): (&[&str], &[&str]) = if long {
                (
                    &["ID", "Name", "Type", "Description", "Enabled"],
                    &["id", "name", "type", "description", "enabled"],
                )
            } else {
                (&["ID", "Name", "Type"], &["id", "name", "type"])
            };
            let rows = services
                .iter()
                .map(|s| keys.iter().map(|k| Cell::from(s.field(k))).collect())
                .collect();
            Ok(Done::Print(Output::list(headers, rows), out))
        }
    }
}

pub async fn run_endpoint(id: &Identity, cmd: EndpointCmd) -> CliResult<Done> {
    match cmd {
        EndpointCmd::Group { cmd } => super::endpoint_group::run(id, cmd).await,
        EndpointCmd::Create {
            service,
            interface,
            url,
            region,
            enable,
            out,
        } => {
            let svc = id.find_service(&service).await?;
            let mut body = serde_json::Map::new();
            body.insert("service_id".into(), json!(svc.field("id").as_str()));
            body.insert("url".into(), json!(url));
            body.insert("interface".into(), json!(interface.as_str()));
            body.insert("enabled".into(), json!(!enable.disabled()));
            if let Some(r) = &region {
                let reg = id.get_region(r).await?;
                body.insert("region_id".into(), json!(reg.field("id").as_str()));
            }
            let e = id.create(Kind::Endpoint, body.into()).await?;
            Ok(Done::Print(format_endpoint(&e, &svc), out))
        }
        EndpointCmd::Add {
            what:
                EndpointProject::Project {
                    endpoint,
                    project,
                    project_domain,
                },
        } => associate(id, Method::PUT, &endpoint, &project, &project_domain).await,
        EndpointCmd::Remove {
            what:
                EndpointProject::Project {
                    endpoint,
                    project,
                    project_domain,
                },
        } => associate(id, Method::DELETE, &endpoint, &project, &project_domain).await,
        EndpointCmd::List {
            endpoint,
            project,
            project_domain,
            out,
            ..
        } if endpoint.is_some() || project.is_some() => {
            list_associated(id, endpoint, project, project_domain, out).await
        }
        EndpointCmd::List {
            service,
            interface,
            region,
            out,
            ..
        } => {
            let mut query: Vec<(&str, String)> = Vec::new();
            if let Some(s) = &service {
                let svc = id.find_service(s).await?;
                query.push(("service_id", svc.str_field("id").unwrap_or_default().into()));
            }
            if let Some(i) = interface {
                query.push(("interface", i.as_str().into()));
            }
            if let Some(r) = &region {
                let reg = id.get_region(r).await?;
                query.push(("region_id", reg.str_field("id").unwrap_or_default().into()));
            }
            let endpoints = id.list(&["endpoints"], "endpoints", &query).await?;
            let rows = endpoint_rows(id, &endpoints).await?;
            Ok(Done::Print(Output::list(&ENDPOINT_HEADERS, rows), out))
        }
    }
}

/// `endpoint list --endpoint` (the endpoint's projects, as openstackclient lists them here) or
/// `--project` (the project's endpoints).
async fn list_associated(
    id: &Identity,
    endpoint: Option<String>,
    project: Option<String>,
    project_domain: Option<String>,
    out: OutputArgs,
) -> CliResult<Done> {
    if let Some(e) = endpoint {
        let eid = endpoint_id(id, &e).await?;
        let projects = id
            .list(
                &["OS-EP-FILTER", "endpoints", &eid, "projects"],
                "projects",
                &[],
            )
            .await?;
        let rows = projects
            .iter()
            .map(|p| vec![Cell::from(p.field("id")), p.field("name").into()])
            .collect();
        return Ok(Done::Print(Output::list(&["ID", "Name"], rows), out));
    }
    let pid = in_domain(
        id,
        Kind::Project,
        &project.unwrap_or_default(),
        &project_domain,
    )
    .await?;
    let endpoints = id
        .list(
            &["OS-EP-FILTER", "projects", &pid, "endpoints"],
            "endpoints",
            &[],
        )
        .await?;
    let rows = endpoint_rows(id, &endpoints).await?;
    Ok(Done::Print(Output::list(&ENDPOINT_HEADERS, rows), out))
}

/// `endpoint list`'s columns.
const ENDPOINT_HEADERS: [&str; 7] = [
    "ID",
    "Region",
    "Service Name",
    "Service Type",
    "Enabled",
    "Interface",
    "URL",
];

/// openstacksdk's `find_endpoint`: endpoints are found by id only.
async fn endpoint_id(id: &Identity, endpoint: &str) -> CliResult<String> {
    let e = id
        .find(Kind::Endpoint, endpoint, &[])
        .await
        .map_err(CliError::from)?;
    Ok(e.str_field("id").unwrap_or(endpoint).to_string())
}

/// `endpoint add project` (PUT) and `endpoint remove project` (DELETE).
async fn associate(
    id: &Identity,
    method: Method,
    endpoint: &str,
    project: &str,
    project_domain: &Option<String>,
) -> CliResult<Done> {
    let eid = endpoint_id(id, endpoint).await?;
    let pid = in_domain(id, Kind::Project, project, project_domain).await?;
    id.call(
        method,
        &["OS-EP-FILTER", "projects", &pid, "endpoints", &eid],
        &[],
        None,
    )
    .await?;
    Ok(Done::Nothing)
}

/// The lines of `endpoint list`, with each endpoint's service name and type.
async fn endpoint_rows(id: &Identity, endpoints: &[Value]) -> CliResult<Vec<Vec<Cell>>> {
    // One listing for the service columns instead of a request per service.
    let services: HashMap<String, Value> = id
        .list(&["services"], "services", &[])
        .await?
        .into_iter()
        .map(|s| (s.str_field("id").unwrap_or_default().to_string(), s))
        .collect();
    let mut rows = Vec::new();
    for e in endpoints {
        let s = e
            .str_field("service_id")
            .and_then(|sid| services.get(sid))
            .unwrap_or(&Value::Null);
        rows.push(vec![
            Cell::from(e.field("id")),
            e.field("region_id").into(),
            s.field("name").into(),
            s.field("type").into(),
            e.field("enabled").into(),
            e.field("interface").into(),
            e.field("url").into(),
        ]);
    }
    Ok(rows)
}

/// openstackclient's `EndpointsColumn.human_readable`.
fn endpoints_text(endpoints: &[Value]) -> String {
    let mut s = String::new();
    for ep in endpoints {
        let region = ep
            .get("region_id")
            .filter(|r| r.truthy())
            .or_else(|| ep.get("region").filter(|r| r.truthy()))
            .map(super::output::py_str)
            .unwrap_or_else(|| "<none>".into());
        s.push_str(&region);
        s.push('\n');
        s.push_str(&format!(
            "  {}: {}\n",
            super::output::py_str(&ep.field("interface")),
            super::output::py_str(&ep.field("url"))
        ));
    }
    s
}

pub async fn run_catalog(id: &Identity, cmd: CatalogCmd) -> CliResult<Done> {
    match cmd {
        CatalogCmd::List { out } => {
            let token = id.own_token().await?;
            let catalog = token.field("token").field("catalog");
            let rows = catalog
                .as_array()
                .iter()
                .map(|s| {
                    // get_dict_properties: a missing key is ''.
                    let dict = |k: &str| s.get(k).cloned().unwrap_or_else(|| Value::str(""));
                    let endpoints = dict("endpoints");
                    vec![
                        Cell::from(dict("name")),
                        dict("type").into(),
                        Cell {
                            human: Some(endpoints_text(endpoints.as_array())),
                            value: endpoints,
                        },
                    ]
                })
                .collect();
            Ok(Done::Print(
                Output::list(&["Name", "Type", "Endpoints"], rows),
                out,
            ))
        }
    }
}
