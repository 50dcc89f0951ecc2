//! The project tree: which project is above or below which. A request reads only the part of
//! the `project` table it touches ([`ProjectSlice`]): the projects it names, the ones above them
//! (parent by parent), the ones below them (level by level, by Baton's index on `parent_id`) or
//! a whole domain when an inherited domain grant reaches all of it. Domains are rows there too,
//! with `is_domain`.

use std::collections::{HashMap, HashSet};

use baton_store::{Project, ProjectColumn, ProjectNode, Store};

use crate::error::ApiResult;

/// Every project and domain loaded so far with its parent, indexed both ways. Questions are
/// answered from the loaded rows only: [`ProjectSlice`] loads what each question needs first.
pub struct ProjectTree {
    nodes: HashMap<String, ProjectNode>,
    /// parent project id -> child project ids, sorted.
    children: HashMap<String, Vec<String>>,
}

impl ProjectTree {
    /// The tree of already-loaded nodes.
    pub fn from_nodes(nodes: Vec<ProjectNode>) -> ProjectTree {
        let mut tree = ProjectTree {
            nodes: HashMap::with_capacity(nodes.len()),
            children: HashMap::new(),
        };
        tree.insert(nodes);
        tree
    }

    /// Adds nodes not yet present (a node already loaded is kept as it is).
    pub fn insert(&mut self, nodes: Vec<ProjectNode>) {
        for n in nodes {
            if self.nodes.contains_key(&n.id) {
                continue;
            }
            if let (false, Some(parent)) = (n.is_domain, &n.parent_id) {
                let kids = self.children.entry(parent.clone()).or_default();
                if let Err(at) = kids.binary_search(&n.id) {
                    kids.insert(at, n.id.clone());
                }
            }
            self.nodes.insert(n.id.clone(), n);
        }
    }

    /// A project (not a domain) by id.
    pub fn project(&self, id: &str) -> Option<&ProjectNode> {
        self.nodes.get(id).filter(|p| !p.is_domain)
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

fn node_of(p: &Project) -> ProjectNode {
    ProjectNode {
        id: p.id.clone(),
        name: p.name.clone(),
        domain_id: p.domain_id.clone(),
        parent_id: p.parent_id.clone(),
        is_domain: p.is_domain,
    }
}

/// The project rows one request needs, loaded around the projects it names, and the tree over
/// them. Each `load_*` reads only rows not already loaded, by indexed queries (a level of the
/// tree per query), so the cost follows the size of the answer, not of the table.
#[derive(Default)]
pub struct ProjectSlice {
    rows: HashMap<String, Project>,
    tree: ProjectTree,
    /// Projects (or domains) whose whole subtree is loaded.
    complete_below: HashSet<String>,
}

impl Default for ProjectTree {
    fn default() -> Self {
        ProjectTree::from_nodes(Vec::new())
    }
}

impl ProjectSlice {
    /// Nothing loaded yet.
    pub fn new() -> ProjectSlice {
        ProjectSlice::default()
    }

    /// The tree over the loaded rows.
    pub fn tree(&self) -> &ProjectTree {
        &self.tree
    }

    /// A loaded project or domain row.
    pub fn get(&self, id: &str) -> Option<&Project> {
        self.rows.get(id)
    }

    /// Consumes the slice into its rows.
    pub fn into_rows(self) -> HashMap<String, Project> {
        self.rows
    }

    fn add(&mut self, rows: Vec<Project>) -> Vec<String> {
        let mut new = Vec::new();
        let mut nodes = Vec::new();
        for p in rows {
            if !self.rows.contains_key(&p.id) {
                new.push(p.id.clone());
                nodes.push(node_of(&p));
                self.rows.insert(p.id.clone(), p);
            }
        }
        self.tree.insert(nodes);
        new
    }

    /// The rows of `ids` (ids with no row are skipped).
    pub async fn load(&mut self, store: &Store, ids: &[String]) -> ApiResult<()> {
        let missing: Vec<String> = unique(ids.iter().filter(|id| !self.rows.contains_key(*id)));
        if !missing.is_empty() {
            let rows = store.projects_where(ProjectColumn::Id, &missing).await?;
            self.add(rows);
        }
        Ok(())
    }

    /// The rows of `ids` and of every project and domain above them.
    pub async fn load_ancestors(&mut self, store: &Store, ids: &[String]) -> ApiResult<()> {
        let mut next: Vec<String> = ids.to_vec();
        let mut asked: HashSet<String> = HashSet::new();
        while !next.is_empty() {
            self.load(store, &next).await?;
            asked.extend(next.iter().cloned());
            // A cycle in corrupt data ends here: an id is asked for at most once.
            next = unique(
                next.iter()
                    .filter_map(|id| self.rows.get(id)?.parent_id.as_ref())
                    .filter(|p| !asked.contains(*p)),
            );
        }
        Ok(())
    }

    /// The rows of `ids` and of every project below them, a level per query.
    pub async fn load_subtrees(&mut self, store: &Store, ids: &[String]) -> ApiResult<()> {
        self.load(store, ids).await?;
        let mut level: Vec<String> =
            unique(ids.iter().filter(|id| !self.complete_below.contains(*id)));
        while !level.is_empty() {
            let kids = store
                .projects_where(ProjectColumn::ParentId, &level)
                .await?
                .into_iter()
                .filter(|p| !p.is_domain)
                .collect();
            self.add(kids);
            self.complete_below.extend(level.iter().cloned());
            // Every child of this level, including any loaded earlier by another question.
            level = unique(
                level
                    .iter()
                    .flat_map(|id| self.tree.children.get(id).into_iter().flatten())
                    .filter(|id| !self.complete_below.contains(*id)),
            );
        }
        Ok(())
    }

    /// Every project of `domain_id` (one query on the `(domain_id, name)` index).
    pub async fn load_domain(&mut self, store: &Store, domain_id: &str) -> ApiResult<()> {
        if self.complete_below.contains(domain_id) {
            return Ok(());
        }
        let ids = [domain_id.to_string()];
        self.load(store, &ids).await?;
        let rows: Vec<Project> = store
            .projects_where(ProjectColumn::DomainId, &ids)
            .await?
            .into_iter()
            .filter(|p| !p.is_domain)
            .collect();
        // A project's subtree never leaves its domain, so every one of them is complete.
        self.complete_below
            .extend(rows.iter().map(|p| p.id.clone()).chain(ids));
        self.add(rows);
        Ok(())
    }
}

/// `ids` without repeats, in first-seen order.
fn unique<'a>(ids: impl Iterator<Item = &'a String>) -> Vec<String> {
    let mut seen = HashSet::new();
    ids.filter(|id| seen.insert(id.as_str())).cloned().collect()
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
