//! `user create|show|list|set|delete` (openstackclient `identity/v3/user.py`).

use std::collections::BTreeSet;

use baton_client::Method;
use clap::{Args, Subcommand};
use serde_json::json;

use super::api::{CallError, FindError, Kind};
use super::output::{Cell, Output, OutputArgs, Value};
use super::project::Enable;
use super::{warn, CliResult, Done, Identity};

const NO_PASSWORD: &str =
    "No password was supplied, authentication will fail when a user does not have a password.";

#[derive(Debug, Subcommand)]
pub enum UserCmd {
    /// Create new user.
    Create(UserCreate),
    /// Display user details.
    Show {
        /// User to display (name or ID).
        user: String,
        /// Domain owning <user> (name or ID).
        #[arg(long)]
        domain: Option<String>,
        #[command(flatten)]
        out: OutputArgs,
    },
    /// List users.
    List(UserList),
    /// Set user properties.
    Set(UserSet),
    /// Delete user(s).
    Delete {
        /// User(s) to delete (name or ID).
        #[arg(required = true, value_name = "USER")]
        users: Vec<String>,
        /// Domain owning <user> (name or ID).
        #[arg(long)]
        domain: Option<String>,
    },
}

/// The options of `user create`.
#[derive(Debug, Args)]
pub struct UserCreate {
    /// New user name.
    name: String,
    /// Default domain (name or ID).
    #[arg(long)]
    domain: Option<String>,
    /// Default project (name or ID).
    #[arg(long)]
    project: Option<String>,
    /// Domain the project belongs to (name or ID).
    #[arg(long)]
    project_domain: Option<String>,
    /// Set user password.
    #[arg(long)]
    password: Option<String>,
    /// Set user email address.
    #[arg(long)]
    email: Option<String>,
    /// User description.
    #[arg(long)]
    description: Option<String>,
    #[command(flatten)]
    enable: Enable,
    /// Return existing user.
    #[arg(long)]
    or_show: bool,
    #[command(flatten)]
    out: OutputArgs,
}

/// The options of `user list`.
#[derive(Debug, Args)]
pub struct UserList {
    /// Filter users by <domain> (name or ID).
    #[arg(long)]
    domain: Option<String>,
    /// Filter users by <group> membership (name or ID).
    #[arg(long, conflicts_with = "project")]
    group: Option<String>,
    /// Filter users by <project> (name or ID).
    #[arg(long)]
    project: Option<String>,
    /// List additional fields in output.
    #[arg(long)]
    long: bool,
    /// List only enabled users.
    #[arg(long, conflicts_with = "disabled")]
    enabled: bool,
    /// List only disabled users.
    #[arg(long)]
    disabled: bool,
    #[command(flatten)]
    out: OutputArgs,
}

/// The options of `user set`.
#[derive(Debug, Args)]
pub struct UserSet {
    /// User to modify (name or ID).
    user: String,
    /// Set user name.
    #[arg(long)]
    name: Option<String>,
    /// Domain the user belongs to (name or ID).
    #[arg(long)]
    domain: Option<String>,
    /// Set default project (name or ID).
    #[arg(long)]
    project: Option<String>,
    /// Domain the project belongs to (name or ID).
    #[arg(long)]
    project_domain: Option<String>,
    /// Set user password.
    #[arg(long)]
    password: Option<String>,
    /// Set user email address.
    #[arg(long)]
    email: Option<String>,
    /// Set user description.
    #[arg(long)]
    description: Option<String>,
    #[command(flatten)]
    enable: Enable,
}

/// openstackclient's `_format_user`.
fn format_user(u: &Value) -> Output {
    Output::one([
        ("default_project_id", u.field("default_project_id")),
        ("domain_id", u.field("domain_id")),
        ("email", u.field("email")),
        ("enabled", u.field("enabled")),
        ("id", u.field("id")),
        ("name", u.field("name")),
        ("description", u.field("description")),
        ("password_expires_at", u.field("password_expires_at")),
        ("options", u.field("options")),
    ])
}

/// openstackclient's `_get_token_resource(client, 'user', name, domain)`: the caller's own
/// user id when `name` is the token's user (and `domain`, if given, is its domain).
fn own_user(id: &Identity, name: &str, domain: &Option<String>) -> String {
    let a = &id.access;
    let domain_ok = domain
        .as_deref()
        .is_none_or(|d| d == a.user_domain_id() || d == a.user_domain_name());
    if domain_ok && a.user_name() == name {
        a.user_id().to_string()
    } else {
        name.to_string()
    }
}

/// `find_project(name, domain_id=find_domain(project_domain))`.
async fn project_id(
    id: &Identity,
    project: &str,
    project_domain: &Option<String>,
) -> CliResult<String> {
    let filters = match project_domain {
        Some(d) => vec![(
            "domain_id",
            id.find(Kind::Domain, d, &[]).await?.field("id"),
        )]
        .into_iter()
        .map(|(k, v)| (k, v.as_str().unwrap_or_default().to_string()))
        .collect(),
        None => Vec::new(),
    };
    let p = id.find(Kind::Project, project, &filters).await?;
    Ok(p.str_field("id").unwrap_or_default().to_string())
}

pub async fn run(id: &Identity, cmd: UserCmd) -> CliResult<Done> {
    match cmd {
        UserCmd::Create(args) => create(id, args).await,
        UserCmd::Show { user, domain, out } => {
            let wanted = own_user(id, &user, &domain);
            // A --domain that is not found is ignored (openstackclient's ignore_missing=True).
            let mut filters = Vec::new();
            if let Some(d) = &domain {
                match id.find(Kind::Domain, d, &[]).await {
                    Ok(dom) => filters.push((
                        "domain_id",
                        dom.str_field("id").unwrap_or_default().to_string(),
                    )),
                    Err(FindError::NotFound(_)) => {}
                    Err(e) => return Err(e.into()),
                }
            }
            let u = id.find(Kind::User, &wanted, &filters).await?;
            Ok(Done::Print(format_user(&u), out))
        }
        UserCmd::List(args) => list(id, args).await,
        UserCmd::Set(args) => set(id, args).await,
        UserCmd::Delete { users, domain } => {
            let domain_id = match &domain {
                Some(d) => match id.find(Kind::Domain, d, &[]).await {
                    Ok(dom) => dom.str_field("id").map(str::to_string),
                    Err(FindError::NotFound(_)) => None,
                    Err(e) => return Err(e.into()),
                },
                None => None,
            };
            let filters: Vec<(&str, String)> =
                domain_id.iter().map(|d| ("domain_id", d.clone())).collect();
            let filters = &filters;
            super::delete_each(&users, "user with name or ID", "users", |user| async move {
                let u = id.find(Kind::User, &user, filters).await?;
                let uid = u.str_field("id").unwrap_or_default().to_string();
                id.call(Method::DELETE, &["users", &uid], &[], None).await?;
                Ok(())
            })
            .await
        }
    }
}

/// `user create`; with `--or-show`, an existing user of that name is shown instead.
async fn create(id: &Identity, args: UserCreate) -> CliResult<Done> {
    let UserCreate {
        name,
        domain,
        project,
        project_domain,
        password,
        email,
        description,
        enable,
        or_show,
        out,
    } = args;
    let mut body = serde_json::Map::new();
    let mut domain_id = None;
    if let Some(d) = &domain {
        let did = id.find(Kind::Domain, d, &[]).await?;
        let did = did.str_field("id").unwrap_or_default().to_string();
        body.insert("domain_id".into(), json!(did));
        domain_id = Some(did);
    }
    if let Some(p) = &project {
        body.insert(
            "default_project_id".into(),
            json!(project_id(id, p, &project_domain).await?),
        );
    }
    if let Some(d) = description.filter(|d| !d.is_empty()) {
        body.insert("description".into(), json!(d));
    }
    if let Some(e) = email.filter(|e| !e.is_empty()) {
        body.insert("email".into(), json!(e));
    }
    match password.filter(|p| !p.is_empty()) {
        Some(p) => {
            body.insert("password".into(), json!(p));
        }
        None => warn(NO_PASSWORD),
    }
    body.insert("name".into(), json!(name));
    body.insert("enabled".into(), json!(enable.value() != Some(false)));
    let user = match id.create(Kind::User, body.into()).await {
        Ok(u) => u,
        Err(CallError::Api(a)) if a.status == 409 && or_show => {
            let filters: Vec<(&str, String)> =
                domain_id.iter().map(|d| ("domain_id", d.clone())).collect();
            id.find(Kind::User, &name, &filters).await?
        }
        Err(e) => return Err(e.into()),
    };
    Ok(Done::Print(format_user(&user), out))
}

/// `user list`: all users, those of a domain, a group's members or the users with a role on a
/// project.
async fn list(id: &Identity, args: UserList) -> CliResult<Done> {
    let UserList {
        domain,
        group,
        project,
        long,
        enabled,
        disabled,
        out,
    } = args;
    let domain_id = match &domain {
        Some(d) => Some(
            id.find(Kind::Domain, d, &[])
                .await?
                .str_field("id")
                .unwrap_or_default()
                .to_string(),
        ),
        None => None,
    };
    let mut users: Vec<Value>;
    if let Some(p) = &project {
        users = users_on_project(id, p, &domain_id).await?;
    } else if let Some(g) = &group {
        // openstackclient passes --domain as given to find the group.
        let filters: Vec<(&str, String)> =
            domain.iter().map(|d| ("domain_id", d.clone())).collect();
        let gid = id.find(Kind::Group, g, &filters).await?;
        let gid = gid.str_field("id").unwrap_or_default().to_string();
        let q: Vec<(&str, String)> = domain_id.iter().map(|d| ("domain_id", d.clone())).collect();
        users = id.list(&["groups", &gid, "users"], "users", &q).await?;
    } else {
        let mut q: Vec<(&str, String)> =
            domain_id.iter().map(|d| ("domain_id", d.clone())).collect();
        if enabled || disabled {
            q.push(("enabled", if enabled { "True" } else { "False" }.into()));
        }
        users = id.list(&["users"], "users", &q).await?;
    }
    users.retain(|u| !matches!(u, Value::Null));
    let (headers, keys): (&[&str], &[&str]) = if long {
        (
            &[
                "ID",
                "Name",
                "Project",
                "Domain",
                "Description",
                "Email",
                "Enabled",
            ],
            &[
                "id",
                "name",
                "default_project_id",
                "domain_id",
                "description",
                "email",
                "enabled",
            ],
        )
    } else {
        (&["ID", "Name"], &["id", "name"])
    };
    let rows = users
        .iter()
        .map(|u| keys.iter().map(|k| Cell::from(u.field(k))).collect())
        .collect();
    Ok(Done::Print(
        Output::list(headers, rows).with_list_headers(),
        out,
    ))
}

/// `user list --project`: the users with a role assignment on the project, by id.
async fn users_on_project(
    id: &Identity,
    p: &str,
    domain_id: &Option<String>,
) -> CliResult<Vec<Value>> {
    let filters: Vec<(&str, String)> = domain_id.iter().map(|d| ("domain_id", d.clone())).collect();
    let pid = id.find(Kind::Project, p, &filters).await?;
    let pid = pid.str_field("id").unwrap_or_default().to_string();
    let assignments = id
        .list(
            &["role_assignments"],
            "role_assignments",
            &[("scope.project.id", pid)],
        )
        .await?;
    // openstackclient collects the ids in a set: its order is arbitrary, so
    // Baton sorts them.
    let ids: BTreeSet<String> = assignments
        .iter()
        .filter_map(|a| a.get("user").and_then(|u| u.str_field("id")))
        .map(str::to_string)
        .collect();
    // One listing instead of a request per user.
    let mut found = id.list(&["users"], "users", &[]).await?;
    found.retain(|u| u.str_field("id").is_some_and(|uid| ids.contains(uid)));
    found.sort_by(|a, b| a.str_field("id").cmp(&b.str_field("id")));
    Ok(found)
}

/// `user set`: only the options given are sent.
async fn set(id: &Identity, args: UserSet) -> CliResult<Done> {
    let UserSet {
        user,
        name,
        domain,
        project,
        project_domain,
        password,
        email,
        description,
        enable,
    } = args;
    if password.as_deref() == Some("") {
        warn(NO_PASSWORD);
    }
    let u = match &domain {
        Some(d) => {
            let did = id.domain_id(d).await?;
            let wanted = own_user(id, &user, &domain);
            id.find(Kind::User, &wanted, &[("domain_id", did)]).await?
        }
        None => id.find(Kind::User, &user, &[]).await?,
    };
    let uid = u.str_field("id").unwrap_or_default().to_string();
    let mut body = serde_json::Map::new();
    for (k, v) in [
        ("name", &name),
        ("email", &email),
        ("password", &password),
        ("description", &description),
    ] {
        if let Some(v) = v.as_ref().filter(|v| !v.is_empty()) {
            body.insert(k.into(), json!(v));
        }
    }
    if let Some(p) = &project {
        body.insert(
            "default_project_id".into(),
            json!(project_id(id, p, &project_domain).await?),
        );
    }
    if let Some(e) = enable.value() {
        body.insert("enabled".into(), json!(e));
    }
    if !body.is_empty() {
        id.call(
            Method::PATCH,
            &["users", &uid],
            &[],
            Some(json!({ "user": body })),
        )
        .await?;
    }
    Ok(Done::Nothing)
}
