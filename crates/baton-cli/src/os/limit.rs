//! `registered limit create|list|show|set|delete` and `limit create|list|show|set|delete`
//! (openstackclient `identity/v3/registered_limit.py`, `limit.py`): unified limits, printed as
//! openstackclient prints them.

use baton_client::Method;
use clap::Subcommand;
use serde_json::{json, Map};

use super::api::{CallError, Kind};
use super::output::{Cell, Output, OutputArgs, Value};
use super::trust::in_domain;
use super::{CliError, CliResult, Done, Identity};

/// `registered ...`: only `limit` is one of openstackclient's.
#[derive(Debug, Subcommand)]
pub enum RegisteredCmd {
    /// Registered limits (openstack registered limit ...).
    Limit {
        #[command(subcommand)]
        cmd: RegisteredLimitCmd,
    },
}

#[derive(Debug, Subcommand)]
pub enum RegisteredLimitCmd {
    /// Create a registered limit.
    Create {
        /// The name of the resource to limit.
        #[arg(value_name = "RESOURCE_NAME")]
        resource_name: String,
        /// Service responsible for the resource to limit (required) (name or ID).
        #[arg(long, required = true)]
        service: String,
        /// The default limit for the resources to assume (required).
        #[arg(long, required = true, allow_negative_numbers = true)]
        default_limit: i64,
        /// Description of the registered limit.
        #[arg(long)]
        description: Option<String>,
        /// Region for the registered limit to affect.
        #[arg(long)]
        region: Option<String>,
        #[command(flatten)]
        out: OutputArgs,
    },
    /// Delete a registered limit.
    Delete {
        /// Registered limit(s) to delete (ID).
        #[arg(required = true, value_name = "REGISTERED_LIMITS")]
        ids: Vec<String>,
    },
    /// List registered limits.
    List {
        /// Service responsible for the resource to limit (name or ID).
        #[arg(long)]
        service: Option<String>,
        /// The name of the resource to limit.
        #[arg(long)]
        resource_name: Option<String>,
        /// Region for the limit to affect.
        #[arg(long)]
        region: Option<String>,
        #[command(flatten)]
        out: OutputArgs,
    },
    /// Update information about a registered limit.
    Set {
        /// Registered limit to update (ID).
        #[arg(value_name = "REGISTERED_LIMIT_ID")]
        id: String,
        /// Service to be updated responsible for the resource to limit (name or ID).
        #[arg(long)]
        service: Option<String>,
        /// Resource to be updated responsible for the resource to limit.
        #[arg(long)]
        resource_name: Option<String>,
        /// The default limit for the resources to assume.
        #[arg(long, allow_negative_numbers = true)]
        default_limit: Option<i64>,
        /// Description to update of the registered limit.
        #[arg(long)]
        description: Option<String>,
        /// Region for the registered limit to affect.
        #[arg(long)]
        region: Option<String>,
        #[command(flatten)]
        out: OutputArgs,
    },
    /// Display registered limit details.
    Show {
        /// Registered limit to display (ID).
        #[arg(value_name = "REGISTERED_LIMIT_ID")]
        id: String,
        #[command(flatten)]
        out: OutputArgs,
    },
}

#[derive(Debug, Subcommand)]
pub enum LimitCmd {
    /// Create a limit.
    Create {
        /// The name of the resource to limit.
        #[arg(value_name = "RESOURCE_NAME")]
        resource_name: String,
        /// Project to associate the resource limit to (required).
        #[arg(long, required = true)]
        project: String,
        /// Domain owning the project (name or ID).
        #[arg(long)]
        project_domain: Option<String>,
        /// Service responsible for the resource to limit (required).
        #[arg(long, required = true)]
        service: String,
        /// The resource limit for the project to assume (required).
        #[arg(long, required = true, allow_negative_numbers = true)]
        resource_limit: i64,
        /// Description of the limit.
        #[arg(long)]
        description: Option<String>,
        /// Region for the project limit to affect.
        #[arg(long)]
        region: Option<String>,
        #[command(flatten)]
        out: OutputArgs,
    },
    /// Delete a limit.
    Delete {
        /// Limit to delete (ID).
        #[arg(required = true, value_name = "LIMIT_ID")]
        ids: Vec<String>,
    },
    /// List limits.
    List {
        /// Service responsible for the resource to limit.
        #[arg(long)]
        service: Option<String>,
        /// The name of the resource to limit.
        #[arg(long)]
        resource_name: Option<String>,
        /// Region for the registered limit to affect.
        #[arg(long)]
        region: Option<String>,
        /// List resource limits associated with project.
        #[arg(long)]
        project: Option<String>,
        /// Domain owning the project (name or ID).
        #[arg(long)]
        project_domain: Option<String>,
        #[command(flatten)]
        out: OutputArgs,
    },
    /// Update information about a limit.
    Set {
        /// Limit to update (ID).
        #[arg(value_name = "LIMIT_ID")]
        id: String,
        /// Description of the limit.
        #[arg(long)]
        description: Option<String>,
        /// The resource limit for the project to assume.
        #[arg(long, allow_negative_numbers = true)]
        resource_limit: Option<i64>,
        #[command(flatten)]
        out: OutputArgs,
    },
    /// Display limit details.
    Show {
        /// Limit to display (ID).
        #[arg(value_name = "LIMIT_ID")]
        id: String,
        #[command(flatten)]
        out: OutputArgs,
    },
}

/// openstackclient's `_format_registered_limit` columns.
const REGISTERED_COLUMNS: [&str; 6] = [
    "default_limit",
    "description",
    "id",
    "region_id",
    "resource_name",
    "service_id",
];

/// openstackclient's `_format_limit` columns.
const LIMIT_COLUMNS: [&str; 7] = [
    "description",
    "id",
    "project_id",
    "region_id",
    "resource_limit",
    "resource_name",
    "service_id",
];

fn format(v: &Value, columns: &[&'static str]) -> Output {
    Output::one(columns.iter().map(|c| (*c, v.field(c))))
}

/// `(collection, member, class)` of each kind.
#[derive(Clone, Copy)]
struct Resource {
    collection: &'static str,
    member: &'static str,
    class: &'static str,
    noun: &'static str,
}

const REGISTERED: Resource = Resource {
    collection: "registered_limits",
    member: "registered_limit",
    class: "RegisteredLimit",
    noun: "registered limit",
};

const LIMIT: Resource = Resource {
    collection: "limits",
    member: "limit",
    class: "Limit",
    noun: "limit",
};

/// openstacksdk's `get_*`: the member by id, or its "No <Class> found" error.
async fn get(id: &Identity, r: Resource, rid: &str) -> CliResult<Value> {
    match id.get(&[r.collection, rid], &[]).await {
        Ok(v) => Ok(v.field(r.member)),
        Err(CallError::Api(a)) if a.status == 404 => Err(CliError(format!(
            "No {} found for {rid}: Client Error for url: {}, {}",
            r.class, a.url, a.message
        ))),
        Err(e) => Err(e.into()),
    }
}

/// The SDK's create: a batch of one, the first of the answer.
async fn create(
    id: &Identity,
    r: Resource,
    body: Map<String, serde_json::Value>,
) -> CliResult<Value> {
    let made = id
        .call(
            Method::POST,
            &[r.collection],
            &[],
            Some(json!({ r.collection: [body] })),
        )
        .await?
        .unwrap_or(Value::Null);
    Ok(made
        .field(r.collection)
        .as_array()
        .first()
        .cloned()
        .unwrap_or(Value::Null))
}

async fn update(
    id: &Identity,
    r: Resource,
    rid: &str,
    body: Map<String, serde_json::Value>,
) -> CliResult<Value> {
    let made = id
        .call(
            Method::PATCH,
            &[r.collection, rid],
            &[],
            Some(json!({ r.member: body })),
        )
        .await?
        .unwrap_or(Value::Null);
    Ok(made.field(r.member))
}

/// Each id in turn; the failures reported together at the end, as openstackclient does.
async fn delete(id: &Identity, r: Resource, ids: &[String]) -> CliResult<Done> {
    let noun = format!("{} with ID", r.noun);
    let what = format!("{}s", r.noun);
    super::delete_each(ids, &noun, &what, |rid| async move {
        id.call(Method::DELETE, &[r.collection, &rid], &[], None)
            .await?;
        Ok(())
    })
    .await
}

fn service_id(s: &Value) -> serde_json::Value {
    json!(s.str_field("id").unwrap_or_default())
}

async fn region_id(id: &Identity, region: &str) -> CliResult<serde_json::Value> {
    let r = id.get_region(region).await?;
    Ok(json!(r.str_field("id").unwrap_or_default()))
}

/// `registered limit list`'s columns and the attributes they show.
const REGISTERED_LIST: [(&str, &str); 6] = [
    ("ID", "id"),
    ("Service ID", "service_id"),
    ("Resource Name", "resource_name"),
    ("Default Limit", "default_limit"),
    ("Description", "description"),
    ("Region ID", "region_id"),
];

/// `limit list`'s columns and the attributes they show.
const LIMIT_LIST: [(&str, &str); 7] = [
    ("ID", "id"),
    ("Project ID", "project_id"),
    ("Service ID", "service_id"),
    ("Resource Name", "resource_name"),
    ("Resource Limit", "resource_limit"),
    ("Description", "description"),
    ("Region ID", "region_id"),
];

fn table(items: &[Value], columns: &[(&str, &str)]) -> Output {
    let headers: Vec<&str> = columns.iter().map(|(h, _)| *h).collect();
    let rows = items
        .iter()
        .map(|v| {
            columns
                .iter()
                .map(|(_, k)| Cell::from(v.field(k)))
                .collect()
        })
        .collect();
    Output::list(&headers, rows)
}

/// A listing's query: the service and region looked up as openstackclient does, the project
/// (already an id), a non-empty resource name.
async fn filters(
    id: &Identity,
    service: &Option<String>,
    region: &Option<String>,
    project: Option<String>,
    resource_name: Option<String>,
) -> CliResult<Vec<(&'static str, String)>> {
    let mut query: Vec<(&str, String)> = Vec::new();
    if let Some(s) = service {
        let sid = id.find_service(s).await?;
        query.push(("service_id", sid.str_field("id").unwrap_or_default().into()));
    }
    if let Some(r) = region {
        let rid = id.get_region(r).await?;
        query.push(("region_id", rid.str_field("id").unwrap_or_default().into()));
    }
    if let Some(p) = project {
        query.push(("project_id", p));
    }
    if let Some(n) = resource_name.filter(|n| !n.is_empty()) {
        query.push(("resource_name", n));
    }
    Ok(query)
}

pub async fn run_registered(id: &Identity, cmd: RegisteredCmd) -> CliResult<Done> {
    let RegisteredCmd::Limit { cmd } = cmd;
    match cmd {
        RegisteredLimitCmd::Create {
            resource_name,
            service,
            default_limit,
            description,
            region,
            out,
        } => {
            let mut body = Map::new();
            if let Some(d) = description.filter(|d| !d.is_empty()) {
                body.insert("description".into(), json!(d));
            }
            body.insert(
                "service_id".into(),
                service_id(&id.find_service(&service).await?),
            );
            if let Some(r) = &region {
                body.insert("region_id".into(), region_id(id, r).await?);
            }
            body.insert("resource_name".into(), json!(resource_name));
            body.insert("default_limit".into(), json!(default_limit));
            let made = create(id, REGISTERED, body).await?;
            Ok(Done::Print(format(&made, &REGISTERED_COLUMNS), out))
        }
        RegisteredLimitCmd::Delete { ids } => delete(id, REGISTERED, &ids).await,
        RegisteredLimitCmd::List {
            service,
            resource_name,
            region,
            out,
        } => {
            let query = filters(id, &service, &region, None, resource_name).await?;
            let items = id
                .list(&["registered_limits"], "registered_limits", &query)
                .await?;
            Ok(Done::Print(table(&items, &REGISTERED_LIST), out))
        }
        RegisteredLimitCmd::Set {
            id: rid,
            service,
            resource_name,
            default_limit,
            description,
            region,
            out,
        } => {
            // openstackclient sends only what is set and truthy (a default limit of 0 is not).
            let mut body = Map::new();
            if let Some(s) = &service {
                body.insert("service_id".into(), service_id(&id.find_service(s).await?));
            }
            if let Some(n) = resource_name.filter(|n| !n.is_empty()) {
                body.insert("resource_name".into(), json!(n));
            }
            if let Some(l) = default_limit.filter(|l| *l != 0) {
                body.insert("default_limit".into(), json!(l));
            }
            if let Some(d) = description.filter(|d| !d.is_empty()) {
                body.insert("description".into(), json!(d));
            }
            if let Some(r) = &region {
                body.insert("region_id".into(), region_id(id, r).await?);
            }
            let made = update(id, REGISTERED, &rid, body).await?;
            Ok(Done::Print(format(&made, &REGISTERED_COLUMNS), out))
        }
        RegisteredLimitCmd::Show { id: rid, out } => {
            let r = get(id, REGISTERED, &rid).await?;
            Ok(Done::Print(format(&r, &REGISTERED_COLUMNS), out))
        }
    }
}

pub async fn run_limit(id: &Identity, cmd: LimitCmd) -> CliResult<Done> {
    match cmd {
        LimitCmd::Create {
            resource_name,
            project,
            project_domain,
            service,
            resource_limit,
            description,
            region,
            out,
        } => {
            let mut body = Map::new();
            body.insert("resource_name".into(), json!(resource_name));
            body.insert("resource_limit".into(), json!(resource_limit));
            if let Some(d) = description.filter(|d| !d.is_empty()) {
                body.insert("description".into(), json!(d));
            }
            let pid = in_domain(id, Kind::Project, &project, &project_domain).await?;
            body.insert("project_id".into(), json!(pid));
            body.insert(
                "service_id".into(),
                service_id(&id.find_service(&service).await?),
            );
            if let Some(r) = &region {
                body.insert("region_id".into(), region_id(id, r).await?);
            }
            let made = create(id, LIMIT, body).await?;
            Ok(Done::Print(format(&made, &LIMIT_COLUMNS), out))
        }
        LimitCmd::Delete { ids } => delete(id, LIMIT, &ids).await,
        LimitCmd::List {
            service,
            resource_name,
            region,
            project,
            project_domain,
            out,
        } => {
            let project = match &project {
                Some(p) => Some(in_domain(id, Kind::Project, p, &project_domain).await?),
                None => None,
            };
            let query = filters(id, &service, &region, project, resource_name).await?;
            let items = id.list(&["limits"], "limits", &query).await?;
            Ok(Done::Print(table(&items, &LIMIT_LIST), out))
        }
        LimitCmd::Set {
            id: lid,
            description,
            resource_limit,
            out,
        } => {
            let mut body = Map::new();
            if let Some(d) = description.filter(|d| !d.is_empty()) {
                body.insert("description".into(), json!(d));
            }
            if let Some(l) = resource_limit {
                body.insert("resource_limit".into(), json!(l));
            }
            let made = update(id, LIMIT, &lid, body).await?;
            Ok(Done::Print(format(&made, &LIMIT_COLUMNS), out))
        }
        LimitCmd::Show { id: lid, out } => {
            let l = get(id, LIMIT, &lid).await?;
            Ok(Done::Print(format(&l, &LIMIT_COLUMNS), out))
        }
    }
}
