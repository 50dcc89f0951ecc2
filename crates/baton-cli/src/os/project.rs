//! `project create|show|list` and `domain create|show|list` (openstackclient
//! `identity/v3/project.py`, `domain.py`).

use clap::{Args, Subcommand};
use serde_json::json;

use super::api::{CallError, FindError, Kind};
use super::output::{Cell, Output, OutputArgs, Value};
use super::role::Immutable;
use super::{CliError, CliResult, Done, Identity};

/// `--enable` / `--disable`, for every command that has them (projects, domains, users,
/// services, endpoints, service providers).
#[derive(Debug, Clone, Args)]
#[group(multiple = false)]
pub struct Enable {
    /// Enable (default).
    #[arg(long)]
    enable: bool,
    /// Disable.
    #[arg(long)]
    disable: bool,
}

impl Enable {
    pub fn disabled(&self) -> bool {
        self.disable
    }

    /// `Some(true)` for `--enable`, `Some(false)` for `--disable`, `None` for neither.
    pub fn value(&self) -> Option<bool> {
        if self.enable {
            Some(true)
        } else if self.disable {
            Some(false)
        } else {
            None
        }
    }
}

#[derive(Debug, Subcommand)]
pub enum ProjectCmd {
    /// Create new project.
    Create(ProjectCreate),
    /// Display project details.
    Show {
        /// Project to display (name or ID).
        project: String,
        /// Domain owning <project> (name or ID).
        #[arg(long)]
        domain: Option<String>,
        #[command(flatten)]
        out: OutputArgs,
    },
    /// List projects.
    List(ProjectList),
    /// Set project properties.
    Set(super::project_set::ProjectSet),
    /// Delete project(s).
    Delete(super::project_set::ProjectDelete),
}

/// The options of `project create`.
#[derive(Debug, Args)]
pub struct ProjectCreate {
    /// New project name.
    #[arg(value_name = "PROJECT_NAME")]
    name: String,
    /// Domain owning the project (name or ID).
    #[arg(long)]
    domain: Option<String>,
    /// Parent of the project (name or ID).
    #[arg(long)]
    parent: Option<String>,
    /// Project description.
    #[arg(long)]
    description: Option<String>,
    #[command(flatten)]
    enable: Enable,
    /// Add a property to <name> (repeat option to set multiple properties).
    #[arg(long = "property", value_name = "KEY=VALUE")]
    properties: Vec<String>,
    /// Return existing project.
    #[arg(long)]
    or_show: bool,
    #[command(flatten)]
    immutable: Immutable,
    /// Tag to be added to the project (repeat option to set multiple tags).
    #[arg(long = "tag", value_name = "TAG")]
    tags: Vec<String>,
    #[command(flatten)]
    out: OutputArgs,
}

/// The options of `project list`.
#[derive(Debug, Args)]
pub struct ProjectList {
    /// Filter projects by <domain> (name or ID).
    #[arg(long)]
    domain: Option<String>,
    /// Filter projects whose parent is <parent> (name or ID).
    #[arg(long)]
    parent: Option<String>,
    /// Filter projects by <user> (name or ID).
    #[arg(long)]
    user: Option<String>,
    /// List projects for the authenticated user. Supersedes other filters.
    #[arg(long)]
    my_projects: bool,
    /// List additional fields in output.
    #[arg(long)]
    long: bool,
    /// List only enabled projects.
    #[arg(long, conflicts_with = "disabled")]
    enabled: bool,
    /// List only disabled projects.
    #[arg(long)]
    disabled: bool,
    #[command(flatten)]
    out: OutputArgs,
}

#[derive(Debug, Subcommand)]
pub enum DomainCmd {
    /// Create new domain.
    Create {
        /// New domain name.
        #[arg(value_name = "DOMAIN_NAME")]
        name: String,
        /// New domain description.
        #[arg(long)]
        description: Option<String>,
        #[command(flatten)]
        enable: Enable,
        /// Return existing domain.
        #[arg(long)]
        or_show: bool,
        #[command(flatten)]
        immutable: Immutable,
        #[command(flatten)]
        out: OutputArgs,
    },
    /// Display domain details.
    Show {
        /// Domain to display (name or ID).
        domain: String,
        #[command(flatten)]
        out: OutputArgs,
    },
    /// List domains.
    List {
        /// The domain name.
        #[arg(long)]
        name: Option<String>,
        /// The domains that are enabled will be returned.
        #[arg(long)]
        enabled: bool,
        #[command(flatten)]
        out: OutputArgs,
    },
    /// Set domain properties.
    Set(super::project_set::DomainSet),
    /// Delete domain(s).
    Delete(super::project_set::DomainDelete),
}

/// openstackclient's `_format_project`: the SDK Project's attributes, sorted, `is_enabled`
/// shown as `enabled`.
fn format_project(p: &Value) -> Output {
    // Projects carry unknown attributes (`--property`): every one shows, sorted with the
    // SDK's own.
    const OWN: [&str; 9] = [
        "description",
        "domain_id",
        "enabled",
        "id",
        "is_domain",
        "name",
        "options",
        "parent_id",
        "tags",
    ];
    const HIDDEN: [&str; 4] = ["links", "location", "parents_as_ids", "subtree_as_ids"];
    let mut keys: Vec<String> = OWN.iter().map(|k| k.to_string()).collect();
    if let Value::Object(fields) = p {
        for (k, _) in fields {
            if !HIDDEN.contains(&k.as_str()) && !keys.contains(k) {
                keys.push(k.clone());
            }
        }
    }
    keys.sort();
    Output::one(keys.into_iter().map(|k| {
        let v = p.field(&k);
        (k, v)
    }))
}

/// openstackclient's `_format_domain`.
fn format_domain(d: &Value) -> Output {
    Output::one(
        ["id", "name", "enabled", "description", "options"]
            .into_iter()
            .map(|k| (k, d.field(k))),
    )
}

fn by_domain(domain_id: &Option<String>) -> Vec<(&'static str, String)> {
    domain_id.iter().map(|d| ("domain_id", d.clone())).collect()
}

pub async fn run_project(id: &Identity, cmd: ProjectCmd) -> CliResult<Done> {
    match cmd {
        ProjectCmd::Create(args) => create_project(id, args).await,
        ProjectCmd::Show {
            project,
            domain,
            out,
        } => {
            let domain_id = match &domain {
                Some(d) => Some(id.domain_id(d).await?),
                None => None,
            };
            let filters = by_domain(&domain_id);
            let pid = id.find_id(Kind::Project, &project, &filters, false).await?;
            let p = id.find(Kind::Project, &pid, &filters).await?;
            Ok(Done::Print(format_project(&p), out))
        }
        ProjectCmd::List(args) => list_projects(id, args).await,
        ProjectCmd::Set(args) => super::project_set::set_project(id, args).await,
        ProjectCmd::Delete(args) => super::project_set::delete_projects(id, args).await,
    }
}

/// `project create`; with `--or-show`, an existing project of that name is shown instead.
async fn create_project(id: &Identity, args: ProjectCreate) -> CliResult<Done> {
    let ProjectCreate {
        name,
        domain,
        parent,
        description,
        enable,
        properties,
        or_show,
        immutable,
        tags,
        out,
    } = args;
    let mut body = serde_json::Map::new();
    super::project_set::properties(&mut body, &properties)?;
    // `project create` reads an `is_domain` property as a boolean or None.
    if let Some(v) = body.get_mut("is_domain") {
        match v.as_str().map(str::to_ascii_lowercase).as_deref() {
            Some("true") => *v = json!(true),
            Some("false") => *v = json!(false),
            Some("none") => *v = json!(null),
            _ => {}
        }
    }
    if let Some(d) = description.filter(|d| !d.is_empty()) {
        body.insert("description".into(), json!(d));
    }
    body.insert("name".into(), json!(name));
    let mut domain_id = None;
    if let Some(d) = &domain {
        let did = id.domain_id(d).await?;
        body.insert("domain_id".into(), json!(did));
        domain_id = Some(did);
    }
    if let Some(p) = &parent {
        body.insert(
            "parent_id".into(),
            json!(
                id.find_id(Kind::Project, p, &by_domain(&domain_id), true)
                    .await?
            ),
        );
    }
    body.insert("enabled".into(), json!(!enable.disable));
    if !tags.is_empty() {
        // openstackclient sends list(set(tags)); duplicates go, first order is kept.
        let mut seen = Vec::new();
        for t in tags {
            if !seen.contains(&t) {
                seen.push(t);
            }
        }
        body.insert("tags".into(), json!(seen));
    }
    if let Some(i) = immutable.value() {
        body.insert("options".into(), json!({ "immutable": i }));
    }
    let project = match id.create(Kind::Project, body.into()).await {
        Ok(p) => p,
        Err(CallError::Api(a)) if a.status == 409 && or_show => {
            id.find(Kind::Project, &name, &by_domain(&domain_id))
                .await?
        }
        Err(e) => return Err(e.into()),
    };
    Ok(Done::Print(format_project(&project), out))
}

/// `project list`: all projects, a domain's, a parent's children, or a user's
/// (`--my-projects`: the caller's own).
async fn list_projects(id: &Identity, args: ProjectList) -> CliResult<Done> {
    let ProjectList {
        domain,
        parent,
        user,
        my_projects,
        long,
        enabled,
        disabled,
        out,
    } = args;
    let mut query: Vec<(&str, String)> = Vec::new();
    let mut domain_id = None;
    if let Some(d) = &domain {
        let did = id.domain_id(d).await?;
        query.push(("domain_id", did.clone()));
        domain_id = Some(did);
    }
    if let Some(p) = &parent {
        query.push((
            "parent_id",
            id.find_id(Kind::Project, p, &by_domain(&domain_id), true)
                .await?,
        ));
    }
    let mut user_id = match &user {
        Some(u) => Some(
            id.find_id(Kind::User, u, &by_domain(&domain_id), true)
                .await?,
        ),
        None => None,
    };
    if enabled || disabled {
        query.push(("enabled", if enabled { "True" } else { "False" }.into()));
    }
    if my_projects {
        query.clear();
        user_id = Some(id.access.user_id().to_string());
    }
    let projects = match &user_id {
        None => match id.list(&["projects"], "projects", &query).await {
            Ok(p) => p,
            // openstackclient falls back to the user's own projects when it may not list.
            Err(CallError::Api(a)) if a.status == 403 && query.is_empty() => {
                let uid = id.access.user_id().to_string();
                id.list(&["users", &uid, "projects"], "projects", &[])
                    .await?
            }
            Err(e) => return Err(e.into()),
        },
        Some(uid) => {
            id.list(&["users", uid, "projects"], "projects", &query)
                .await?
        }
    };
    let (headers, keys): (&[&str], &[&str]) = if long {
        (
            &["ID", "Name", "Domain ID", "Description", "Enabled"],
            &["id", "name", "domain_id", "description", "enabled"],
        )
    } else {
        (&["ID", "Name"], &["id", "name"])
    };
    let rows = projects
        .iter()
        .map(|p| keys.iter().map(|k| Cell::from(p.field(k))).collect())
        .collect();
    Ok(Done::Print(Output::list(headers, rows), out))
}

pub async fn run_domain(id: &Identity, cmd: DomainCmd) -> CliResult<Done> {
    match cmd {
        DomainCmd::Create {
            name,
            description,
            enable,
            or_show,
            immutable,
            out,
        } => {
            let mut body = serde_json::Map::new();
            body.insert("name".into(), json!(name));
            // openstackclient always sends description (null when not given) and options.
            body.insert("description".into(), json!(description));
            body.insert(
                "options".into(),
                match immutable.value() {
                    Some(i) => json!({ "immutable": i }),
                    None => json!({}),
                },
            );
            body.insert("enabled".into(), json!(!enable.disable));
            let domain = match id.create(Kind::Domain, body.into()).await {
                Ok(d) => d,
                Err(CallError::Api(a)) if a.status == 409 && or_show => {
                    id.find(Kind::Domain, &name, &[]).await?
                }
                Err(e) => return Err(e.into()),
            };
            Ok(Done::Print(format_domain(&domain), out))
        }
        DomainCmd::Show { domain, out } => {
            let d = id
                .find(Kind::Domain, &domain, &[])
                .await
                .map_err(|e| match e {
                    FindError::NotFound(m) => CliError(m),
                    other => other.into(),
                })?;
            Ok(Done::Print(format_domain(&d), out))
        }
        DomainCmd::List { name, enabled, out } => {
            let mut query: Vec<(&str, String)> = Vec::new();
            if let Some(n) = name {
                query.push(("name", n));
            }
            if enabled {
                query.push(("enabled", "True".into()));
            }
            let domains = id.list(&["domains"], "domains", &query).await?;
            let rows = domains
                .iter()
                .map(|d| {
                    ["id", "name", "enabled", "description"]
                        .iter()
                        .map(|k| Cell::from(d.field(k)))
                        .collect()
                })
                .collect();
            Ok(Done::Print(
                Output::list(&["ID", "Name", "Enabled", "Description"], rows),
                out,
            ))
        }
        DomainCmd::Set(args) => super::project_set::set_domain(id, args).await,
        DomainCmd::Delete(args) => super::project_set::delete_domains(id, args).await,
    }
}
