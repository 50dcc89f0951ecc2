//! The role-assignment listing (`GET /v3/role_assignments`) as Keystone's assignment manager
//! computes it, with no HTTP in it: the assignments as stored, or (`effective`) as they act —
//! group grants expanded to the members, inherited grants onto the projects below (where they
//! land is [`super::roles::inherited_reach`], the rule token scoping uses too), implied roles
//! added, each result remembering where it came from (Keystone's `indirect`).
//!
//! Batched: one query for the matching assignments (a few more in effective mode), the project
//! tree and group memberships loaded once when inheritance or groups need them; never a query
//! per assignment.

use std::collections::{HashMap, HashSet};

use baton_store::{AssignmentFilter, AssignmentType, ProjectNode, Role, Store};

use super::roles::inherited_reach;
use super::tree::ProjectSlice;
use crate::error::{ApiError, ApiResult};

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) enum Actor {
    User(String),
    Group(String),
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) enum Scope {
    Project(String),
    Domain(String),
    System,
}

/// Where an expanded assignment came from (Keystone's `indirect`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub(crate) struct Indirect {
    pub(crate) group_id: Option<String>,
    pub(crate) project_id: Option<String>,
    pub(crate) domain_id: Option<String>,
    pub(crate) role_id: Option<String>,
}

/// One assignment as Keystone's assignment manager passes it around before formatting.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct Ref {
    pub(crate) actor: Actor,
    pub(crate) scope: Scope,
    pub(crate) role_id: String,
    /// Still an inherited grant (not expanded onto projects).
    pub(crate) inherited: bool,
    pub(crate) indirect: Indirect,
}

/// The query, read as Keystone reads it.
#[derive(Debug, Default)]
pub(crate) struct Params {
    pub(crate) role_id: Option<String>,
    pub(crate) user_id: Option<String>,
    pub(crate) group_id: Option<String>,
    /// `scope.system=all`; other values are ignored.
    pub(crate) system: bool,
    pub(crate) domain_id: Option<String>,
    pub(crate) project_id: Option<String>,
    pub(crate) include_subtree: bool,
    /// `scope.OS-INHERIT:inherited_to`: `Some(true)` for `projects`, `Some(false)` for any
    /// other value, `None` when absent (both kinds).
    pub(crate) inherited: Option<bool>,
    pub(crate) effective: bool,
    pub(crate) include_names: bool,
}

// ----- what the listing needs to know ----------------------------------------------------------

/// Roles, implications and the part of the project tree the listing touches.
pub(crate) struct Data {
    pub(crate) roles: HashMap<String, Role>,
    pub(crate) implied: HashMap<String, Vec<String>>,
    /// The projects asked about with those above (and, for `include_subtree`, below) them;
    /// [`effective`] adds what inherited grants reach.
    pub(crate) projects: ProjectSlice,
}

impl Data {
    async fn load(store: &Store, p: &Params) -> ApiResult<Data> {
        let roles = store
            .list_roles()
            .await?
            .into_iter()
            .map(|r| (r.id.clone(), r))
            .collect();
        let mut implied: HashMap<String, Vec<String>> = HashMap::new();
        if p.effective {
            let mut pairs = store.list_implied_roles().await?;
            pairs.sort();
            for (prior, imp) in pairs {
                implied.entry(prior).or_default().push(imp);
            }
        }
        let mut projects = ProjectSlice::new();
        if let Some(id) = &p.project_id {
            let ids = [id.clone()];
            projects.load_ancestors(store, &ids).await?;
            if p.include_subtree {
                projects.load_subtrees(store, &ids).await?;
            }
        }
        Ok(Data {
            roles,
            implied,
            projects,
        })
    }

    pub(crate) fn project(&self, id: &str) -> Option<&ProjectNode> {
        self.projects.tree().project(id)
    }

    pub(crate) fn subtree(&self, id: &str) -> Vec<String> {
        self.projects.tree().subtree(id)
    }

    pub(crate) fn parents(&self, id: &str) -> Vec<String> {
        self.projects.tree().ancestors(id)
    }

    /// The projects an inherited grant on `target` reaches (loaded by [`effective`] first).
    fn inherited_reach(&self, on_project: bool, target: &str) -> Vec<String> {
        inherited_reach(self.projects.tree(), on_project, target)
    }

    /// Loads what the inherited grants among `refs` reach.
    async fn load_reach(&mut self, store: &Store, refs: &[Ref]) -> ApiResult<()> {
        let mut below = Vec::new();
        for r in refs.iter().filter(|r| r.inherited) {
            match &r.scope {
                Scope::Project(id) => below.push(id.clone()),
                Scope::Domain(id) => self.projects.load_domain(store, id).await?,
                Scope::System => {}
            }
        }
        self.projects.load_subtrees(store, &below).await
    }
}

/// The listing `p` asks for, and what was loaded to compute it (for names). `only_domain`: a
/// domain-scoped caller sees only assignments on its domain and its domain's projects.
pub(crate) async fn list(
    store: &Store,
    p: &Params,
    only_domain: Option<&str>,
    mine: Mine<'_>,
) -> ApiResult<(Vec<Ref>, Data)> {
    let mut data = Data::load(store, p).await?;
    let mut refs = if p.effective {
        effective(store, mine, p, &mut data).await?
    } else {
        direct(store, p, &data).await?
    };
    if let Some(domain) = only_domain {
        let ids: Vec<String> = refs
            .iter()
            .filter_map(|r| match &r.scope {
                Scope::Project(id) => Some(id.clone()),
                _ => None,
            })
            .collect();
        data.projects.load(store, &ids).await?;
        refs.retain(|r| match &r.scope {
            Scope::Domain(d) => d == domain,
            Scope::Project(p) => data.project(p).is_some_and(|p| p.domain_id == domain),
            Scope::System => false,
        });
    }
    Ok((refs, data))
}

// ----- listing as stored -------------------------------------------------------------------------

/// Keystone's assignment driver: which kinds of rows an actor filter and a target filter allow.
fn kinds_for(user: bool, group: bool, project: bool, domain: bool) -> Option<Vec<AssignmentType>> {
    use AssignmentType::*;
    let actor: Option<[AssignmentType; 2]> = if user {
        Some([UserProject, UserDomain])
    } else if group {
        Some([GroupProject, GroupDomain])
    } else {
        None
    };
    let target: Option<[AssignmentType; 2]> = if project {
        Some([UserProject, GroupProject])
    } else if domain {
        Some([UserDomain, GroupDomain])
    } else {
        None
    };
    match (actor, target) {
        (Some(a), Some(t)) => Some(a.into_iter().filter(|k| t.contains(k)).collect()),
        (Some(a), None) => Some(a.to_vec()),
        (None, Some(t)) => Some(t.to_vec()),
        (None, None) => None,
    }
}

/// One query of `assignment` with the driver's filters, as `Ref`s in a stable order.
/// The rows of `user.id` and of its groups, when the caller has them (the token service's
/// snapshot, as Keystone memoizes `list_role_assignments`): filtered in memory instead of
/// asking the database once more per group chunk. `None`: ask the database.
pub(crate) type Mine<'a> = Option<&'a [baton_store::Assignment]>;

/// Where [`query_refs`] finds rows: the user's rows in memory when given, else the database.
#[derive(Clone, Copy)]
struct Source<'a> {
    store: &'a Store,
    mine: Mine<'a>,
}

async fn query_refs(
    src: Source<'_>,
    role_id: Option<&str>,
    user_id: Option<&str>,
    group_ids: Option<&[String]>,
    domain_id: Option<&str>,
    project_ids: Option<&[String]>,
    inherited: Option<bool>,
) -> ApiResult<Vec<Ref>> {
    let group_ids = group_ids.filter(|g| !g.is_empty());
    let project_ids = project_ids.filter(|p| !p.is_empty());
    let targets = match (project_ids, domain_id) {
        (Some(p), _) => Some(p.to_vec()),
        (None, Some(d)) => Some(vec![d.to_string()]),
        (None, None) => None,
    };
    let actors = match (group_ids, user_id) {
        (Some(g), _) => Some(g.to_vec()),
        (None, Some(u)) => Some(vec![u.to_string()]),
        (None, None) => None,
    };
    let filter = AssignmentFilter {
        role_id: role_id.map(str::to_string),
        actor_ids: actors,
        target_ids: targets,
        kinds: kinds_for(
            user_id.is_some(),
            group_ids.is_some(),
            project_ids.is_some(),
            domain_id.is_some(),
        ),
        inherited,
    };
    let mut rows = match src.mine {
        Some(rows) => rows.iter().filter(|a| filter.matches(a)).cloned().collect(),
        None => src.store.list_assignments(&filter).await?,
    };
    rows.sort_by(|a, b| {
        (
            a.kind.as_str(),
            &a.actor_id,
            &a.target_id,
            &a.role_id,
            a.inherited,
        )
            .cmp(&(
                b.kind.as_str(),
                &b.actor_id,
                &b.target_id,
                &b.role_id,
                b.inherited,
            ))
    });
    Ok(rows
        .into_iter()
        .map(|a| Ref {
            actor: if a.kind.is_group() {
                Actor::Group(a.actor_id)
            } else {
                Actor::User(a.actor_id)
            },
            scope: if a.kind.is_domain() {
                Scope::Domain(a.target_id)
            } else {
                Scope::Project(a.target_id)
            },
            role_id: a.role_id,
            inherited: a.inherited,
            indirect: Indirect::default(),
        })
        .collect())
}

async fn direct(store: &Store, p: &Params, data: &Data) -> ApiResult<Vec<Ref>> {
    let mut project_ids = None;
    if let Some(project) = &p.project_id {
        let mut ids = if p.include_subtree {
            data.subtree(project)
        } else {
            Vec::new()
        };
        ids.push(project.clone());
        project_ids = Some(ids);
    }
    let group_ids = p.group_id.clone().map(|g| vec![g]);
    let mut out = Vec::new();
    if !p.system {
        out = query_refs(
            Source { store, mine: None },
            p.role_id.as_deref(),
            p.user_id.as_deref(),
            group_ids.as_deref(),
            p.domain_id.as_deref(),
            project_ids.as_deref(),
            p.inherited,
        )
        .await?;
    }
    // System grants come along unless a project or domain is asked for.
    if p.system || (p.project_id.is_none() && p.domain_id.is_none()) {
        let (actor, is_group) = match (&p.user_id, &p.group_id) {
            (Some(u), _) => (Some(u.as_str()), Some(false)),
            (None, Some(g)) => (Some(g.as_str()), Some(true)),
            (None, None) => (None, None),
        };
        let mut system = store.list_system_assignments(actor, is_group).await?;
        system.sort_by(|a, b| {
            (a.is_group, &a.actor_id, &a.role_id).cmp(&(b.is_group, &b.actor_id, &b.role_id))
        });
        out.extend(
            system
                .into_iter()
                // Keystone lists a user's or group's system roles through the roles that
                // exist.
                .filter(|a| actor.is_none() || data.roles.contains_key(&a.role_id))
                .filter(|a| p.role_id.as_ref().is_none_or(|r| *r == a.role_id))
                .map(|a| Ref {
                    actor: if a.is_group {
                        Actor::Group(a.actor_id)
                    } else {
                        Actor::User(a.actor_id)
                    },
                    scope: Scope::System,
                    role_id: a.role_id,
                    inherited: false,
                    indirect: Indirect::default(),
                }),
        );
    }
    Ok(out)
}

// ----- effective ---------------------------------------------------------------------------------

/// Assignments that can affect the result for one actor (a user, a set of groups, or anyone),
/// before expansion: direct ones on the targets asked for and inherited ones from above them.
async fn for_actor(
    src: Source<'_>,
    data: &Data,
    p: &Params,
    user_id: Option<&str>,
    group_ids: Option<&[String]>,
    subtree: &[String],
    inherited: Option<bool>,
) -> ApiResult<Vec<Ref>> {
    let interest: Option<Vec<String>> = p.project_id.as_ref().map(|id| {
        let mut ids = subtree.to_vec();
        ids.push(id.clone());
        ids
    });
    let mut out = Vec::new();
    if inherited != Some(true) {
        out.extend(
            query_refs(
                src,
                None,
                user_id,
                group_ids,
                p.domain_id.as_deref(),
                interest.as_deref(),
                Some(false),
            )
            .await?,
        );
    }
    if inherited != Some(false) {
        match &p.project_id {
            Some(project_id) => {
                // Inherited grants reach a project from its domain and from its parents.
                let domain_id = data
                    .project(project_id)
                    .map(|pr| pr.domain_id.clone())
                    .ok_or_else(|| {
                        ApiError::NotFound(format!("Could not find project: {project_id}."))
                    })?;
                out.extend(
                    query_refs(
                        src,
                        None,
                        user_id,
                        group_ids,
                        Some(&domain_id),
                        None,
                        Some(true),
                    )
                    .await?,
                );
                let mut sources = data.parents(project_id);
                if !subtree.is_empty() {
                    sources.extend(interest.iter().flatten().cloned());
                }
                if !sources.is_empty() {
                    out.extend(
                        query_refs(
                            src,
                            None,
                            user_id,
                            group_ids,
                            None,
                            Some(&sources),
                            Some(true),
                        )
                        .await?,
                    );
                }
            }
            None => {
                out.extend(query_refs(src, None, user_id, group_ids, None, None, Some(true)).await?)
            }
        }
    }
    Ok(out)
}

async fn effective(
    store: &Store,
    mine: Mine<'_>,
    p: &Params,
    data: &mut Data,
) -> ApiResult<Vec<Ref>> {
    // Domains inherit nothing, so a domain filter means direct grants only.
    let inherited = if p.domain_id.is_some() {
        Some(false)
    } else {
        p.inherited
    };
    let subtree = match (&p.project_id, p.include_subtree) {
        (Some(id), true) => data.subtree(id),
        _ => Vec::new(),
    };
    let src = Source { store, mine };
    let mut found = for_actor(
        src,
        data,
        p,
        p.user_id.as_deref(),
        None,
        &subtree,
        inherited,
    )
    .await?;
    if let Some(user_id) = &p.user_id {
        // With the user's rows at hand, the groups that matter are those holding grants.
        let groups = match mine {
            Some(rows) => {
                let mut g: Vec<String> = rows
                    .iter()
                    .filter(|a| a.kind.is_group())
                    .map(|a| a.actor_id.clone())
                    .collect();
                g.sort_unstable();
                g.dedup();
                g
            }
            None => store.list_user_group_ids(user_id).await?,
        };
        if !groups.is_empty() {
            let of_groups = for_actor(src, data, p, None, Some(&groups), &subtree, inherited);
            found.extend(of_groups.await?);
        }
    }
    // Members of every group involved, in one query.
    let group_ids: Vec<String> = found
        .iter()
        .filter_map(|r| match &r.actor {
            Actor::Group(g) if p.user_id.is_none() => Some(g.clone()),
            _ => None,
        })
        .collect();
    let members = if group_ids.is_empty() {
        HashMap::new()
    } else {
        store.group_members(&group_ids).await?
    };
    if p.project_id.is_none() {
        data.load_reach(store, &found).await?;
    }
    let mut expanded = Vec::new();
    for r in found {
        expand(r, p, &subtree, data, &members, &mut expanded);
    }
    let mut refs = add_implied_roles(expanded, &data.implied);
    // Domain-specific roles only lend their implications; they never act themselves.
    refs.retain(|r| {
        data.roles
            .get(&r.role_id)
            .is_some_and(|role| role.domain_id.is_none())
    });
    if let Some(role_id) = &p.role_id {
        refs.retain(|r| r.role_id == *role_id);
    }
    Ok(refs)
}

/// A group grant becomes one per member (just the user asked about, when there is one); an
/// inherited grant becomes one per project below its target (limited to the projects asked
/// about).
fn expand(
    r: Ref,
    p: &Params,
    subtree: &[String],
    data: &Data,
    members: &HashMap<String, Vec<String>>,
    out: &mut Vec<Ref>,
) {
    let users = |group: &str| -> Vec<String> {
        match &p.user_id {
            Some(u) => vec![u.clone()],
            None => members.get(group).cloned().unwrap_or_default(),
        }
    };
    let for_user = |r: &Ref, user: &str| -> Ref {
        let mut n = r.clone();
        if let Actor::Group(g) = &r.actor {
            n.indirect.group_id = Some(g.clone());
        }
        n.actor = Actor::User(user.to_string());
        n
    };
    if !r.inherited {
        match &r.actor {
            Actor::Group(g) => {
                for u in users(g) {
                    out.push(for_user(&r, &u));
                }
            }
            Actor::User(_) => out.push(r),
        }
        return;
    }
    let projects: Vec<String> = match (&p.project_id, &r.scope) {
        (Some(asked), scope) => {
            let mut ids = vec![asked.clone()];
            ids.extend(subtree.iter().cloned());
            // A grant inherited from inside the subtree reaches only the part below it.
            if !subtree.is_empty() {
                if let Scope::Project(from) = scope {
                    if ids.contains(from) {
                        ids = data.subtree(from);
                    }
                }
            }
            ids
        }
        (None, Scope::Domain(d)) => data.inherited_reach(false, d),
        (None, Scope::Project(from)) => data.inherited_reach(true, from),
        (None, Scope::System) => Vec::new(),
    };
    let onto = |base: &Ref, project: &str| -> Ref {
        let mut n = base.clone();
        match &base.scope {
            Scope::Project(from) => n.indirect.project_id = Some(from.clone()),
            Scope::Domain(from) => n.indirect.domain_id = Some(from.clone()),
            Scope::System => {}
        }
        n.scope = Scope::Project(project.to_string());
        n.inherited = false;
        n
    };
    match &r.actor {
        Actor::Group(g) => {
            for u in users(g) {
                let member = for_user(&r, &u);
                for project in &projects {
                    out.push(onto(&member, project));
                }
            }
        }
        Actor::User(_) => {
            for project in &projects {
                out.push(onto(&r, project));
            }
        }
    }
}

/// Adds a copy of each assignment per role its role implies, transitively; the copy names the
/// role it was implied by. Cycles are walked once.
fn add_implied_roles(refs: Vec<Ref>, implied: &HashMap<String, Vec<String>>) -> Vec<Ref> {
    if implied.is_empty() {
        return refs;
    }
    let mut results = refs.clone();
    let mut to_check = refs;
    let mut checked: HashSet<Ref> = HashSet::new();
    while let Some(next) = to_check.pop() {
        checked.insert(next.clone());
        for imp in implied.get(&next.role_id).into_iter().flatten() {
            let mut copy = next.clone();
            copy.role_id = imp.clone();
            copy.indirect.role_id = Some(next.role_id.clone());
            if checked.contains(&copy) {
                continue;
            }
            results.push(copy.clone());
            to_check.push(copy);
        }
    }
    results
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(role: &str) -> Ref {
        Ref {
            actor: Actor::User("u".into()),
            scope: Scope::Project("p".into()),
            role_id: role.into(),
            inherited: false,
            indirect: Indirect::default(),
        }
    }

    #[test]
    fn implied_roles_expand_transitively_and_survive_cycles() {
        let mut implied = HashMap::new();
        implied.insert("admin".to_string(), vec!["member".to_string()]);
        implied.insert("member".to_string(), vec!["reader".to_string()]);
        let out = add_implied_roles(vec![r("admin")], &implied);
        let got: Vec<(&str, Option<&str>)> = out
            .iter()
            .map(|x| (x.role_id.as_str(), x.indirect.role_id.as_deref()))
            .collect();
        assert_eq!(
            got,
            vec![
                ("admin", None),
                ("member", Some("admin")),
                ("reader", Some("member"))
            ]
        );

        let mut cycle = HashMap::new();
        cycle.insert("a".to_string(), vec!["b".to_string()]);
        cycle.insert("b".to_string(), vec!["a".to_string()]);
        let out = add_implied_roles(vec![r("a")], &cycle);
        assert_eq!(out.len(), 3, "{out:?}");
    }

    #[test]
    fn kinds_follow_the_driver() {
        use AssignmentType::*;
        assert_eq!(kinds_for(true, false, true, false), Some(vec![UserProject]));
        assert_eq!(
            kinds_for(false, true, false, false),
            Some(vec![GroupProject, GroupDomain])
        );
        assert_eq!(
            kinds_for(false, false, false, true),
            Some(vec![UserDomain, GroupDomain])
        );
        assert_eq!(kinds_for(false, false, false, false), None);
    }
}
