//! Where a role assignment takes effect, as Keystone's effective role assignments define it:
//! a grant on a project applies there; a grant on a domain applies to the domain; an inherited
//! grant on a domain applies to every project of the domain (not the domain); an inherited grant
//! on a project applies to every project below it (not the project). Group grants count for
//! every member. Which roles then follow (implications, domain-specific roles dropped) is
//! [`crate::directory::Directory::expand_roles`].

use std::collections::BTreeMap;

use baton_store::{Assignment, AssignmentType};

use super::ProjectTree;

fn on_project(a: &Assignment) -> bool {
    matches!(
        a.kind,
        AssignmentType::UserProject | AssignmentType::GroupProject
    )
}

/// Whether `a` gives its role on project `project_id` of domain `domain_id`, whose ancestor
/// projects are `ancestors`.
pub fn grants_on_project(
    a: &Assignment,
    project_id: &str,
    domain_id: &str,
    ancestors: &[String],
) -> bool {
    match (on_project(a), a.inherited) {
        (true, false) => a.target_id == project_id,
        (true, true) => ancestors.contains(&a.target_id),
        (false, true) => a.target_id == domain_id,
        (false, false) => false,
    }
}

/// Whether `a` gives its role on domain `domain_id` itself.
pub fn grants_on_domain(a: &Assignment, domain_id: &str) -> bool {
    a.kind.is_domain() && !a.inherited && a.target_id == domain_id
}

/// The projects an inherited grant reaches: every project below its project, or every project
/// of its domain (never the target itself).
pub fn inherited_reach(tree: &ProjectTree, on_project: bool, target: &str) -> Vec<String> {
    if on_project {
        tree.subtree(target)
    } else {
        tree.projects_in_domain(target)
    }
}

/// The projects and domains on which a set of assignments (a user's and their groups') gives
/// any role, each with the role ids granted there (before implication), in id order.
#[derive(Debug, Default, PartialEq)]
pub struct EffectiveTargets {
    /// Project id -> role ids granted there.
    pub projects: BTreeMap<String, Vec<String>>,
    /// Domain id -> role ids granted on the domain itself.
    pub domains: BTreeMap<String, Vec<String>>,
}

impl EffectiveTargets {
    /// Where each of `assignments` gives its role, over the project `tree`.
    pub fn compute(assignments: &[Assignment], tree: &ProjectTree) -> EffectiveTargets {
        let mut out = EffectiveTargets::default();
        let add = |map: &mut BTreeMap<String, Vec<String>>, target: &str, role: &str| {
            let roles = map.entry(target.to_string()).or_default();
            if !roles.iter().any(|r| r == role) {
                roles.push(role.to_string());
            }
        };
        for a in assignments {
            let targets = match (on_project(a), a.inherited) {
                (true, false) => vec![a.target_id.clone()],
                (on_project, true) => inherited_reach(tree, on_project, &a.target_id),
                (false, false) => {
                    add(&mut out.domains, &a.target_id, &a.role_id);
                    continue;
                }
            };
            for p in targets {
                add(&mut out.projects, &p, &a.role_id);
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use baton_store::ProjectNode;

    fn grant(kind: AssignmentType, target: &str, role: &str, inherited: bool) -> Assignment {
        Assignment {
            kind,
            actor_id: "u".into(),
            target_id: target.into(),
            role_id: role.into(),
            inherited,
        }
    }

    fn node(id: &str, domain: &str, parent: &str) -> ProjectNode {
        ProjectNode {
            id: id.into(),
            name: id.into(),
            domain_id: domain.into(),
            parent_id: Some(parent.into()),
            is_domain: false,
        }
    }

    /// The enumeration over the tree and the per-project predicate agree: every project listed
    /// has a grant there by `grants_on_project`, and no other project does.
    #[test]
    fn listing_and_scoping_agree() {
        use AssignmentType::*;
        let tree = ProjectTree::from_nodes(vec![
            node("p", "d", "d"),
            node("c", "d", "p"),
            node("g", "d", "c"),
            node("q", "d", "d"),
            node("e1", "e", "e"),
        ]);
        let grants = vec![
            grant(UserProject, "p", "inh", true),
            grant(GroupProject, "q", "direct", false),
            grant(UserDomain, "e", "dom", false),
            grant(GroupDomain, "e", "all", true),
        ];
        let eff = EffectiveTargets::compute(&grants, &tree);
        let listed: Vec<&str> = eff.projects.keys().map(String::as_str).collect();
        assert_eq!(listed, ["c", "e1", "g", "q"]);
        assert_eq!(eff.domains.keys().collect::<Vec<_>>(), ["e"]);
        for p in tree.projects() {
            let ancestors = tree.ancestors(&p.id);
            let roles: Vec<&str> = grants
                .iter()
                .filter(|a| grants_on_project(a, &p.id, &p.domain_id, &ancestors))
                .map(|a| a.role_id.as_str())
                .collect();
            assert_eq!(
                roles,
                eff.projects
                    .get(&p.id)
                    .map(|r| r.iter().map(String::as_str).collect::<Vec<_>>())
                    .unwrap_or_default(),
                "project {}",
                p.id
            );
        }
        assert!(grants.iter().any(|a| grants_on_domain(a, "e")));
        assert!(!grants.iter().any(|a| grants_on_domain(a, "d")));
    }
}
