//! The project tree: which project is above or below which, read from one snapshot of the
//! `project` table (domains are rows there too, with `is_domain`).

use std::collections::{HashMap, HashSet};

use baton_store::{Project, ProjectNode, Store};

use crate::error::ApiResult;

/// Every project and domain with its parent, indexed both ways.
pub struct ProjectTree {
    nodes: HashMap<String, ProjectNode>,
    /// parent project id -> child project ids, sorted.
    children: HashMap<String, Vec<String>>,
}

impl ProjectTree {
    /// One read of the `project` table.
    pub async fn load(store: &Store) -> ApiResult<ProjectTree> {
        Ok(ProjectTree::from_nodes(store.list_project_nodes().await?))
    }

    /// The tree of project rows a caller already loaded in full (no second read).
    pub fn from_projects(all: &[Project]) -> ProjectTree {
        ProjectTree::from_nodes(
            all.iter()
                .map(|p| ProjectNode {
                    id: p.id.clone(),
                    name: p.name.clone(),
                    domain_id: p.domain_id.clone(),
                    parent_id: p.parent_id.clone(),
                    is_domain: p.is_domain,
                })
                .collect(),
        )
    }

    /// The tree of already-loaded nodes.
    pub fn from_nodes(nodes: Vec<ProjectNode>) -> ProjectTree {
        let mut children: HashMap<String, Vec<String>> = HashMap::new();
        for p in nodes.iter().filter(|p| !p.is_domain) {
            if let Some(parent) = &p.parent_id {
                children
                    .entry(parent.clone())
                    .or_default()
                    .push(p.id.clone());
            }
        }
        for kids in children.values_mut() {
            kids.sort_unstable();
        }
        ProjectTree {
            nodes: nodes.into_iter().map(|n| (n.id.clone(), n)).collect(),
            children,
        }
    }

    /// A project (not a domain) by id.
    pub fn project(&self, id: &str) -> Option<&ProjectNode> {
        self.nodes.get(id).filter(|p| !p.is_domain)
    }

    /// Every project and domain.
    pub fn nodes(&self) -> impl Iterator<Item = &ProjectNode> {
        self.nodes.values()
    }

    /// Every project (not domain).
    pub fn projects(&self) -> impl Iterator<Item = &ProjectNode> {
        self.nodes.values().filter(|p| !p.is_domain)
    }

    /// The projects above `id` up to (not including) its domain, nearest first. Bounded by the
    /// number of rows, so corrupt data with a cycle cannot hang a request.
    pub fn ancestors(&self, id: &str) -> Vec<String> {
        let mut out = Vec::new();
        let mut next = self.project(id).and_then(|p| p.parent_id.as_deref());
        while let Some(p) = next.and_then(|n| self.project(n)) {
            if out.len() > self.nodes.len() || out.contains(&p.id) {
                break;
            }
            out.push(p.id.clone());
            next = p.parent_id.as_deref();
        }
        out
    }

    /// The projects below `id` (not itself), each level pushed in reverse id order (the order
    /// the role-assignment listing has always shown).
    pub fn subtree(&self, id: &str) -> Vec<String> {
        let mut out = Vec::new();
        let mut seen = HashSet::new();
        let mut stack = vec![id];
        while let Some(next) = stack.pop() {
            for kid in self.children.get(next).into_iter().flatten().rev() {
                if seen.insert(kid.as_str()) {
                    out.push(kid.clone());
                    stack.push(kid);
                }
            }
        }
        out
    }

    /// The projects of a domain, in id order.
    pub fn projects_in_domain(&self, domain_id: &str) -> Vec<String> {
        let mut ids: Vec<String> = self
            .projects()
            .filter(|p| p.domain_id == domain_id)
            .map(|p| p.id.clone())
            .collect();
        ids.sort_unstable();
        ids
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(id: &str, parent: Option<&str>, is_domain: bool) -> ProjectNode {
        ProjectNode {
            id: id.into(),
            name: id.into(),
            domain_id: if is_domain {
                "<<keystone.domain.root>>"
            } else {
                "d"
            }
            .into(),
            parent_id: parent.map(str::to_string),
            is_domain,
        }
    }

    #[test]
    fn walks_up_and_down_and_survives_cycles() {
        let tree = ProjectTree::from_nodes(vec![
            node("d", None, true),
            node("a", Some("d"), false),
            node("b", Some("a"), false),
            node("c", Some("b"), false),
            node("b2", Some("a"), false),
            // A corrupt cycle below the tree.
            node("x", Some("y"), false),
            node("y", Some("x"), false),
        ]);
        assert_eq!(tree.ancestors("c"), vec!["b", "a"]);
        assert!(
            tree.ancestors("a").is_empty(),
            "the domain is not an ancestor project"
        );
        assert_eq!(tree.subtree("a"), vec!["b2", "b", "c"]);
        assert_eq!(tree.projects_in_domain("d").len(), 6);
        assert_eq!(tree.ancestors("x"), vec!["y", "x"]);
        assert_eq!(tree.subtree("x"), vec!["y", "x"]);
    }
}
