//! `project set|delete` and `domain set|delete` (openstackclient `identity/v3/project.py` and
//! `domain.py`): changes print nothing; deleting several names each failure, then how many.

use baton_client::Method;
use clap::Args;
use serde_json::{json, Map};

use super::api::{FindError, Kind};
use super::output::Value;
use super::project::Enable;
use super::role::Immutable;
use super::{CliError, CliResult, Done, Identity};

/// The options of `project set`.
#[derive(Debug, Args)]
pub struct ProjectSet {
    /// Project to modify (name or ID).
    project: String,
    /// Set project name.
    #[arg(long)]
    name: Option<String>,
    /// Domain owning <project> (name or ID).
    #[arg(long)]
    domain: Option<String>,
    /// Set project description.
    #[arg(long)]
    description: Option<String>,
    #[command(flatten)]
    enable: Enable,
    /// Set a property on <project> (repeat option to set multiple properties).
    #[arg(long = "property", value_name = "KEY=VALUE")]
    properties: Vec<String>,
    #[command(flatten)]
    immutable: Immutable,
    /// Tag to be added to the project (repeat option to set multiple tags).
    #[arg(long = "tag", value_name = "TAG")]
    tags: Vec<String>,
    /// Clear tags associated with the project. Specify both --tag and --clear-tags to
    /// overwrite current tags.
    #[arg(long)]
    clear_tags: bool,
    /// Tag to be deleted from the project (repeat option to delete multiple tags).
    #[arg(long = "remove-tag", value_name = "TAG")]
    remove_tags: Vec<String>,
}

/// The options of `project delete`.
#[derive(Debug, Args)]
pub struct ProjectDelete {
    /// Project(s) to delete (name or ID).
    #[arg(required = true, value_name = "PROJECT")]
    projects: Vec<String>,
    /// Domain owning <project> (name or ID).
    #[arg(long)]
    domain: Option<String>,
}

/// The options of `domain set`.
#[derive(Debug, Args)]
pub struct DomainSet {
    /// Domain to modify (name or ID).
    domain: String,
    /// New domain name.
    #[arg(long)]
    name: Option<String>,
    /// New domain description.
    #[arg(long)]
    description: Option<String>,
    #[command(flatten)]
    enable: Enable,
    #[command(flatten)]
    immutable: Immutable,
}

/// The options of `domain delete`.
#[derive(Debug, Args)]
pub struct DomainDelete {
    /// Domain(s) to delete (name or ID).
    #[arg(required = true, value_name = "DOMAIN")]
    domains: Vec<String>,
}

/// `--property key=value` pairs as body attributes.
pub fn properties(body: &mut Map<String, serde_json::Value>, given: &[String]) -> CliResult<()> {
    for p in given {
        let Some((k, v)) = p.split_once('=') else {
            return Err(CliError(format!(
                "argument --property: Expected 'key=value' type, but got: {p}"
            )));
        };
        body.insert(k.to_string(), json!(v));
    }
    Ok(())
}

/// The attributes both `set` commands send: only those given (a name or description only when
/// not empty), as openstackclient.
fn common(
    name: Option<String>,
    description: Option<String>,
    enable: &Enable,
    immutable: &Immutable,
) -> Map<String, serde_json::Value> {
    let mut body = Map::new();
    if let Some(n) = name.filter(|n| !n.is_empty()) {
        body.insert("name".into(), json!(n));
    }
    if let Some(d) = description.filter(|d| !d.is_empty()) {
        body.insert("description".into(), json!(d));
    }
    if let Some(e) = enable.value() {
        body.insert("enabled".into(), json!(e));
    }
    if let Some(i) = immutable.value() {
        body.insert("options".into(), json!({ "immutable": i }));
    }
    body
}

/// The tags `project set` sends: none, or `[]` with `--clear-tags`, else the project's tags
/// less `--remove-tag`, plus `--tag`, sorted.
fn tags(args: &ProjectSet, project: Option<&Value>) -> Option<Vec<String>> {
    if args.tags.is_empty() && args.remove_tags.is_empty() && !args.clear_tags {
        return None;
    }
    if args.clear_tags {
        return Some(Vec::new());
    }
    let existing: Vec<String> = project
        .map(|p| {
            p.field("tags")
                .as_array()
                .iter()
                .filter_map(|t| t.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    let mut out: Vec<String> = existing
        .into_iter()
        .filter(|t| !args.remove_tags.contains(t))
        .chain(args.tags.iter().cloned())
        .collect();
    out.sort();
    out.dedup();
    Some(out)
}

/// `project set`: the project is looked up by name or id (in `--domain` when given); when it
/// cannot be found the text is taken as its id, as openstackclient does.
pub async fn set_project(id: &Identity, args: ProjectSet) -> CliResult<Done> {
    let mut body = common(
        args.name.clone(),
        args.description.clone(),
        &args.enable,
        &args.immutable,
    );
    properties(&mut body, &args.properties)?;
    let filters = match &args.domain {
        Some(d) => vec![("domain_id", id.find_id(Kind::Domain, d, &[], false).await?)],
        None => Vec::new(),
    };
    let project = match id.find(Kind::Project, &args.project, &filters).await {
        Ok(p) => Some(p),
        Err(FindError::NotFound(_) | FindError::Forbidden(_)) => None,
        Err(FindError::Other(e)) => return Err(e),
    };
    if let Some(t) = tags(&args, project.as_ref()) {
        body.insert("tags".into(), json!(t));
    }
    let pid = project
        .as_ref()
        .and_then(|p| p.str_field("id"))
        .unwrap_or(&args.project)
        .to_string();
    if !body.is_empty() {
        id.call(
            Method::PATCH,
            &["projects", &pid],
            &[],
            Some(json!({ "project": body })),
        )
        .await?;
    }
    Ok(Done::Nothing)
}

/// `domain set`: the domain must exist.
pub async fn set_domain(id: &Identity, args: DomainSet) -> CliResult<Done> {
    let domain = id
        .find(Kind::Domain, &args.domain, &[])
        .await
        .map_err(CliError::from)?;
    let body = common(args.name, args.description, &args.enable, &args.immutable);
    let did = domain.str_field("id").unwrap_or(&args.domain).to_string();
    if !body.is_empty() {
        id.call(
            Method::PATCH,
            &["domains", &did],
            &[],
            Some(json!({ "domain": body })),
        )
        .await?;
    }
    Ok(Done::Nothing)
}

/// Deletes each named resource, found by name or id first.
async fn delete_found(
    id: &Identity,
    kind: Kind,
    names: &[String],
    filters: &[(&str, String)],
) -> CliResult<Done> {
    let noun = format!("{} with name or ID", kind.member());
    super::delete_each(names, &noun, kind.collection(), |name| async move {
        let found = id.find(kind, &name, filters).await?;
        let rid = found.str_field("id").unwrap_or(&name).to_string();
        id.call(Method::DELETE, &[kind.collection(), &rid], &[], None)
            .await?;
        Ok(())
    })
    .await
}

/// `project delete`.
pub async fn delete_projects(id: &Identity, args: ProjectDelete) -> CliResult<Done> {
    let filters = match &args.domain {
        Some(d) => vec![("domain_id", id.find_id(Kind::Domain, d, &[], false).await?)],
        None => Vec::new(),
    };
    delete_found(id, Kind::Project, &args.projects, &filters).await
}

/// `domain delete` (a domain must be disabled first, as the server says).
pub async fn delete_domains(id: &Identity, args: DomainDelete) -> CliResult<Done> {
    delete_found(id, Kind::Domain, &args.domains, &[]).await
}
