//! `role create|show|list|delete|set`, `role add|remove` and `role assignment list`
//! (openstackclient `identity/v3/role.py`, `role_assignment.py`).

use baton_client::Method;
use clap::{Args, Subcommand};
use serde_json::json;

use super::api::{CallError, Kind};
use super::output::{Cell, Output, OutputArgs, Value};
use super::{warn, CliError, CliResult, Done, Identity};

#[derive(Debug, Subcommand)]
pub enum RoleCmd {
    /// Create new role.
    Create {
        /// New role name.
        #[arg(value_name = "ROLE_NAME")]
        name: String,
        /// Add description about the role.
        #[arg(long)]
        description: Option<String>,
        /// Domain the role belongs to (name or ID).
        #[arg(long)]
        domain: Option<String>,
        /// Return existing role.
        #[arg(long)]
        or_show: bool,
        #[command(flatten)]
        immutable: Immutable,
        #[command(flatten)]
        out: OutputArgs,
    },
    /// Display role details.
    Show {
        /// Role to display (name or ID).
        role: String,
        /// Domain the role belongs to (name or ID).
        #[arg(long)]
        domain: Option<String>,
        #[command(flatten)]
        out: OutputArgs,
    },
    /// List roles.
    List {
        /// Include <domain> (name or ID).
        #[arg(long)]
        domain: Option<String>,
        #[command(flatten)]
        out: OutputArgs,
    },
    /// Delete role(s).
    Delete {
        /// Role(s) to delete (name or ID).
        #[arg(required = true, value_name = "ROLE")]
        roles: Vec<String>,
        /// Domain the role belongs to (name or ID).
        #[arg(long)]
        domain: Option<String>,
    },
    /// Adds a role assignment to a user or group on the system, a domain, or a project.
    Add(Grant),
    /// Removes a role assignment from system/domain/project : user/group.
    Remove(Grant),
    /// Role assignments.
    Assignment {
        #[command(subcommand)]
        cmd: AssignmentCmd,
    },
}

/// `--immutable` / `--no-immutable`.
#[derive(Debug, Clone, Args)]
#[group(multiple = false)]
pub struct Immutable {
    /// Make resource immutable.
    #[arg(long)]
    immutable: bool,
    /// Make resource mutable (default).
    #[arg(long)]
    no_immutable: bool,
}

impl Immutable {
    pub fn value(&self) -> Option<bool> {
        if self.immutable {
            Some(true)
        } else if self.no_immutable {
            Some(false)
        } else {
            None
        }
    }
}

#[derive(Debug, Args)]
pub struct Grant {
    /// Role (name or ID).
    role: String,
    /// Include <system> (all).
    #[arg(long, conflicts_with_all = ["domain", "project"])]
    system: Option<String>,
    /// Include <domain> (name or ID).
    #[arg(long, conflicts_with = "project")]
    domain: Option<String>,
    /// Include <project> (name or ID).
    #[arg(long)]
    project: Option<String>,
    /// Include <user> (name or ID).
    #[arg(long, conflicts_with = "group")]
    user: Option<String>,
    /// Include <group> (name or ID).
    #[arg(long)]
    group: Option<String>,
    /// Domain the group belongs to (name or ID).
    #[arg(long)]
    group_domain: Option<String>,
    /// Domain the project belongs to (name or ID).
    #[arg(long)]
    project_domain: Option<String>,
    /// Domain the user belongs to (name or ID).
    #[arg(long)]
    user_domain: Option<String>,
    /// Specifies if the role grant is inheritable to the sub projects.
    #[arg(long)]
    inherited: bool,
    /// Domain the role belongs to (name or ID).
    #[arg(long)]
    role_domain: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum AssignmentCmd {
    /// List role assignments.
    List(AssignmentList),
}

#[derive(Debug, Args)]
pub struct AssignmentList {
    /// Returns only effective role assignments.
    #[arg(long)]
    effective: bool,
    /// Role to filter (name or ID).
    #[arg(long)]
    role: Option<String>,
    /// Domain the role belongs to (name or ID).
    #[arg(long)]
    role_domain: Option<String>,
    /// Display names instead of IDs.
    #[arg(long)]
    names: bool,
    /// User to filter (name or ID).
    #[arg(long, conflicts_with = "group")]
    user: Option<String>,
    /// Domain the user belongs to (name or ID).
    #[arg(long)]
    user_domain: Option<String>,
    /// Group to filter (name or ID).
    #[arg(long)]
    group: Option<String>,
    /// Domain the group belongs to (name or ID).
    #[arg(long)]
    group_domain: Option<String>,
    /// Domain to filter (name or ID).
    #[arg(long, conflicts_with_all = ["project", "system"])]
    domain: Option<String>,
    /// Project to filter (name or ID).
    #[arg(long, conflicts_with = "system")]
    project: Option<String>,
    /// Filter based on system role assignments.
    #[arg(long)]
    system: Option<String>,
    /// Domain the project belongs to (name or ID).
    #[arg(long)]
    project_domain: Option<String>,
    /// Specifies if the role grant is inheritable to the sub projects.
    #[arg(long)]
    inherited: bool,
    /// Only list assignments for the authenticated user.
    #[arg(long = "auth-user")]
    auth_user: bool,
    /// Only list assignments for the project to which the authenticated user's token is scoped.
    #[arg(long = "auth-project")]
    auth_project: bool,
    #[command(flatten)]
    out: OutputArgs,
}

/// openstackclient's `_format_role`.
fn format_role(r: &Value) -> Output {
    Output::one(
        ["id", "name", "domain_id", "description"]
            .into_iter()
            .map(|k| (k, r.field(k))),
    )
}

fn domain_filter(domain_id: &Option<String>) -> Vec<(&'static str, String)> {
    domain_id.iter().map(|d| ("domain_id", d.clone())).collect()
}

async fn opt_domain(id: &Identity, d: &Option<String>) -> CliResult<Option<String>> {
    match d {
        Some(d) => Ok(Some(id.domain_id(d).await?)),
        None => Ok(None),
    }
}

pub async fn run(id: &Identity, cmd: RoleCmd) -> CliResult<Done> {
    match cmd {
        RoleCmd::Create {
            name,
            description,
            domain,
            or_show,
            immutable,
            out,
        } => {
            let mut body = serde_json::Map::new();
            if let Some(d) = &domain {
                body.insert("domain_id".into(), json!(id.domain_id(d).await?));
            }
            body.insert("name".into(), json!(name));
            if let Some(d) = description.filter(|d| !d.is_empty()) {
                body.insert("description".into(), json!(d));
            }
            if let Some(i) = immutable.value() {
                body.insert("options".into(), json!({ "immutable": i }));
            }
            let role = match id.create(Kind::Role, body.into()).await {
                Ok(r) => r,
                Err(CallError::Api(a)) if a.status == 409 && or_show => {
                    // openstackclient passes --domain as given here, not resolved.
                    id.find(Kind::Role, &name, &domain_filter(&domain)).await?
                }
                Err(e) => return Err(e.into()),
            };
            Ok(Done::Print(format_role(&role), out))
        }
        RoleCmd::Show { role, domain, out } => {
            let domain_id = opt_domain(id, &domain).await?;
            let r = id
                .find(Kind::Role, &role, &domain_filter(&domain_id))
                .await?;
            Ok(Done::Print(format_role(&r), out))
        }
        RoleCmd::List { domain, out } => list_roles(id, domain, out).await,
        RoleCmd::Delete { roles, domain } => delete_roles(id, roles, domain).await,
        RoleCmd::Add(g) => grant(id, g, true).await,
        RoleCmd::Remove(g) => grant(id, g, false).await,
        RoleCmd::Assignment {
            cmd: AssignmentCmd::List(a),
        } => assignment_list(id, a).await,
    }
}

/// `role list`: the global roles, or with `--domain` that domain's own roles.
async fn list_roles(id: &Identity, domain: Option<String>, out: OutputArgs) -> CliResult<Done> {
    match domain {
        Some(d) => {
            let dom = id.find(Kind::Domain, &d, &[]).await?;
            let did = dom.str_field("id").unwrap_or_default().to_string();
            let roles = id.list(&["roles"], "roles", &[("domain_id", did)]).await?;
            let rows = roles
                .iter()
                .map(|r| {
                    vec![
                        Cell::from(r.field("id")),
                        r.field("name").into(),
                        dom.field("name").into(),
                    ]
                })
                .collect();
            Ok(Done::Print(
                Output::list(&["ID", "Name", "Domain"], rows),
                out,
            ))
        }
        None => {
            let roles = id.list(&["roles"], "roles", &[]).await?;
            let rows = roles
                .iter()
                .map(|r| vec![Cell::from(r.field("id")), r.field("name").into()])
                .collect();
            Ok(Done::Print(Output::list(&["ID", "Name"], rows), out))
        }
    }
}

/// `role delete`: each role in turn; the failures are reported together at the end.
async fn delete_roles(
    id: &Identity,
    roles: Vec<String>,
    domain: Option<String>,
) -> CliResult<Done> {
    let domain_id = opt_domain(id, &domain).await?;
    let filters = domain_filter(&domain_id);
    let filters = &filters;
    super::delete_each(&roles, "role with name or ID", "roles", |role| async move {
        let rid = id.find_id(Kind::Role, &role, filters, true).await?;
        id.call(Method::DELETE, &["roles", &rid], &[], None).await?;
        Ok(())
    })
    .await
}

const BAD_ARGS_ADD: &str =
    "Role not added, incorrect set of arguments provided. See openstack --help for more details";
const BAD_ARGS_REMOVE: &str =
    "Incorrect set of arguments provided. See openstack --help for more details";

/// An actor or target id: must exist for `role add`; for `role remove` a name that is not
/// found is used as the id (openstackclient's `validate_actor_existence=False`).
async fn actor(
    id: &Identity,
    kind: Kind,
    name_or_id: &str,
    domain: &Option<String>,
    must_exist: bool,
) -> CliResult<String> {
    let domain_id = match domain {
        Some(d) => Some(id.find_id(Kind::Domain, d, &[], must_exist).await?),
        None => None,
    };
    id.find_id(kind, name_or_id, &domain_filter(&domain_id), must_exist)
        .await
}

async fn grant(id: &Identity, g: Grant, add: bool) -> CliResult<Done> {
    if g.user.is_none() && g.domain.is_none() && g.group.is_none() && g.project.is_none() {
        return Err(CliError(
            if add { BAD_ARGS_ADD } else { BAD_ARGS_REMOVE }.into(),
        ));
    }
    let role_domain = opt_domain(id, &g.role_domain).await?;
    let role = id
        .find_id(Kind::Role, &g.role, &domain_filter(&role_domain), true)
        .await?;
    let (actor_kind, actor_name, actor_domain) = match (&g.user, &g.group) {
        (Some(u), _) => ("users", u.as_str(), &g.user_domain),
        (None, Some(gr)) => ("groups", gr.as_str(), &g.group_domain),
        _ => return Err(CliError(BAD_ARGS_ADD.into())),
    };
    let kind = if actor_kind == "users" {
        Kind::User
    } else {
        Kind::Group
    };
    // openstackclient resolves the actor first, then the target.
    let path: Vec<String> = if g.system.is_some() {
        let actor_id = actor(id, kind, actor_name, actor_domain, add).await?;
        if g.inherited && add {
            warn("'--inherited' was given, which is not supported when adding a system role. This will be an error in a future release.");
        }
        // The system is always `all`: the URL names no system.
        vec![
            "system".into(),
            actor_kind.into(),
            actor_id,
            "roles".into(),
            role,
        ]
    } else if let Some(d) = &g.domain {
        let actor_id = actor(id, kind, actor_name, actor_domain, add).await?;
        let domain_id = id.find_id(Kind::Domain, d, &[], add).await?;
        target_path(
            "domains",
            domain_id,
            actor_kind,
            actor_id,
            role,
            g.inherited,
        )
    } else if let Some(p) = &g.project {
        let actor_id = actor(id, kind, actor_name, actor_domain, add).await?;
        let project_id = actor(id, Kind::Project, p, &g.project_domain, add).await?;
        target_path(
            "projects",
            project_id,
            actor_kind,
            actor_id,
            role,
            g.inherited,
        )
    } else {
        return Err(CliError(BAD_ARGS_ADD.into()));
    };
    let segs: Vec<&str> = path.iter().map(String::as_str).collect();
    let method = if add { Method::PUT } else { Method::DELETE };
    id.call(method, &segs, &[], None).await?;
    Ok(Done::Nothing)
}

fn target_path(
    targets: &str,
    target_id: String,
    actor_kind: &str,
    actor_id: String,
    role: String,
    inherited: bool,
) -> Vec<String> {
    let mut p: Vec<String> = Vec::new();
    if inherited {
        p.push("OS-INHERIT".into());
    }
    p.extend([
        targets.to_string(),
        target_id,
        actor_kind.to_string(),
        actor_id,
        "roles".into(),
        role,
    ]);
    if inherited {
        p.push("inherited_to_projects".into());
    }
    p
}

/// `name@domain` with `--names`, the id without; empty when absent.
fn assignment_part(v: Option<&Value>, names: bool) -> Value {
    let Some(v) = v.filter(|v| v.truthy()) else {
        return Value::str("");
    };
    if names {
        let mut s = v.str_field("name").unwrap_or_default().to_string();
        if let Some(d) = v.get("domain").filter(|d| d.truthy()) {
            s.push('@');
            s.push_str(d.str_field("name").unwrap_or_default());
        }
        Value::str(s)
    } else {
        Value::str(v.str_field("id").unwrap_or_default())
    }
}

async fn assignment_list(id: &Identity, a: AssignmentList) -> CliResult<Done> {
    let query = assignment_query(id, &a).await?;
    let items = id
        .list(&["role_assignments"], "role_assignments", &query)
        .await?;
    let rows = items.iter().map(|r| assignment_row(r, a.names)).collect();
    Ok(Done::Print(
        Output::list(
            &[
                "Role",
                "User",
                "Group",
                "Project",
                "Domain",
                "System",
                "Inherited",
            ],
            rows,
        ),
        a.out,
    ))
}

/// The `/v3/role_assignments` filters of `role assignment list`, names resolved to ids.
async fn assignment_query(
    id: &Identity,
    a: &AssignmentList,
) -> CliResult<Vec<(&'static str, String)>> {
    let find_domain = |d: &Option<String>| {
        let d = d.clone();
        async move {
            match d {
                Some(d) => Ok::<_, CliError>(Some(id.domain_id(&d).await?)),
                None => Ok(None),
            }
        }
    };
    let role_domain = find_domain(&a.role_domain).await?;
    let mut query: Vec<(&str, String)> = Vec::new();
    if let Some(r) = &a.role {
        query.push((
            "role.id",
            id.find_id(Kind::Role, r, &domain_filter(&role_domain), true)
                .await?,
        ));
    }
    let user_domain = find_domain(&a.user_domain).await?;
    if let Some(u) = &a.user {
        query.push((
            "user.id",
            id.find_id(Kind::User, u, &domain_filter(&user_domain), true)
                .await?,
        ));
    } else if a.auth_user {
        query.push((
            "user.id",
            id.find_id(Kind::User, id.access.user_id(), &[], true)
                .await?,
        ));
    }
    if let Some(s) = &a.system {
        query.push(("scope.system", s.clone()));
    }
    if let Some(d) = &a.domain {
        query.push(("scope.domain.id", id.domain_id(d).await?));
    }
    let project_domain = find_domain(&a.project_domain).await?;
    if let Some(p) = &a.project {
        query.push((
            "scope.project.id",
            id.find_id(Kind::Project, p, &domain_filter(&project_domain), true)
                .await?,
        ));
    } else if a.auth_project {
        let Some(p) = id.access.project_id() else {
            return Err(CliError("missing auth info".into()));
        };
        query.push((
            "scope.project.id",
            id.find_id(Kind::Project, p, &[], true).await?,
        ));
    }
    let group_domain = find_domain(&a.group_domain).await?;
    if let Some(g) = &a.group {
        query.push((
            "group.id",
            id.find_id(Kind::Group, g, &domain_filter(&group_domain), true)
                .await?,
        ));
    }
    if a.effective {
        query.push(("effective", "True".into()));
    }
    if a.names {
        query.push(("include_names", "True".into()));
    }
    if a.inherited {
        query.push(("scope.OS-INHERIT:inherited_to", "projects".into()));
    }
    Ok(query)
}

/// One line of `role assignment list`.
fn assignment_row(r: &Value, names: bool) -> Vec<Cell> {
    let scope = r.field("scope");
    vec![
        Cell::from(assignment_part(r.get("role"), names)),
        assignment_part(r.get("user"), names).into(),
        assignment_part(r.get("group"), names).into(),
        assignment_part(scope.get("project"), names).into(),
        assignment_part(scope.get("domain"), names).into(),
        Value::str(if scope.get("system").is_some_and(Value::truthy) {
            "all"
        } else {
            ""
        })
        .into(),
        Value::Bool(scope.str_field("OS-INHERIT:inherited_to") == Some("projects")).into(),
    ]
}
