//! Projects and domains (rows of one `project` table) and Keystone's rules for writing them: a
//! project lives in one domain, its parent is a project of the same domain or the domain
//! itself, the tree is at most `[DEFAULT] max_project_tree_depth` deep, only leaves are deleted,
//! a project is not enabled under a disabled parent nor disabled above enabled children, the
//! default domain stays enabled, and a domain is deleted only once disabled.

use baton_store::{Project, RevocationEvent, ROOT_DOMAIN_ID};
use serde_json::{Map, Value};

use super::grants::{immutable_in, IMMUTABLE_ID};
use super::{Identity, ProjectSlice};
use crate::error::{ApiError, ApiResult};

/// A new project's or domain's own attributes, as the request gave them.
#[derive(Debug, Clone, Default)]
pub struct NewProject {
    /// Unique within the domain.
    pub name: String,
    /// Free text.
    pub description: Option<String>,
    /// A disabled project or domain cannot be scoped to.
    pub enabled: bool,
    /// Project tags (checked by [`check_tags`]).
    pub tags: Vec<String>,
    /// Attributes Keystone keeps in `extra`.
    pub extra: Map<String, Value>,
    /// The `immutable` resource option, when the body set it.
    pub immutable: Option<bool>,
}

/// Where a new project goes: its domain (as given, else the parent's, else the caller's domain
/// scope, else the default domain) and its parent, found before the policy check because the
/// policy target names the domain.
#[derive(Debug, Clone)]
pub struct Placement {
    /// The domain the project will live in.
    pub domain_id: String,
    parent: Option<Project>,
}

/// A PATCH of a project or domain: `None` leaves an attribute as it is.
#[derive(Debug, Clone, Default)]
pub struct ProjectChanges {
    /// A new name.
    pub name: Option<String>,
    /// A new description; `Some(None)` clears it.
    pub description: Option<Option<String>>,
    /// Enable or disable (with the hierarchy rules).
    pub enabled: Option<bool>,
    /// Replaces every tag.
    pub tags: Option<Vec<String>>,
    /// Merged over the stored `extra`.
    pub extra: Map<String, Value>,
    /// What the body said about attributes that cannot change (refused when different).
    pub domain_id: Option<Option<String>>,
    /// What the body said about `parent_id` (refused when different).
    pub parent_id: Option<Option<String>>,
    /// What the body said about `is_domain` (`true` is refused).
    pub is_domain: Option<bool>,
    /// `options.immutable`: `Some(None)` removes the option.
    pub immutable: Option<Option<bool>>,
    /// How many attributes the body named (an immutable project or domain accepts only
    /// `options` clearing `immutable`).
    pub attributes: usize,
}

impl ProjectChanges {
    fn apply(self, p: &mut Project) {
        if let Some(name) = self.name {
            p.name = name;
        }
        if let Some(d) = self.description {
            p.description = d;
        }
        if let Some(enabled) = self.enabled {
            p.enabled = enabled;
        }
        p.extra = Some(super::merge_extra(p.extra.as_deref(), self.extra));
    }
}

/// A project's domain: itself for a domain row.
fn domain_of(p: &Project) -> &str {
    if p.is_domain {
        &p.id
    } else {
        &p.domain_id
    }
}

impl Identity {
    /// How many project levels a domain may hold: `[DEFAULT] max_project_tree_depth`, and at
    /// most two under `[unified_limit] enforcement_model = strict_two_level` (Keystone's rule).
    pub fn max_project_depth(&self) -> usize {
        let configured = self.config.default.max_project_tree_depth as usize;
        match self.config.unified_limit.enforcement_model {
            baton_config::EnforcementModel::StrictTwoLevel => configured.min(2),
            baton_config::EnforcementModel::Flat => configured,
        }
    }

    /// The projects above `id` up to (excluding) its domain, nearest first; reads only them.
    async fn ancestors_of(&self, id: &str) -> ApiResult<Vec<Project>> {
        let mut slice = ProjectSlice::new();
        slice.load_ancestors(&self.store, &[id.to_string()]).await?;
        let ids = slice.tree().ancestors(id);
        Ok(ids.iter().filter_map(|a| slice.get(a)).cloned().collect())
    }

    /// The projects below `id` (a project or a domain), each level in reverse id order;
    /// reads only them.
    async fn subtree_of(&self, id: &str) -> ApiResult<Vec<Project>> {
        let mut slice = ProjectSlice::new();
        slice.load_subtrees(&self.store, &[id.to_string()]).await?;
        let ids = slice.tree().subtree(id);
        Ok(ids.iter().filter_map(|a| slice.get(a)).cloned().collect())
    }

    /// The projects above `project` up to (excluding) its domain, nearest first.
    pub async fn project_ancestors(&self, project: &Project) -> ApiResult<Vec<Project>> {
        self.ancestors_of(&project.id).await
    }

    /// Where a new project goes (see [`Placement`]); a parent that does not exist is a 400.
    pub async fn place_project(
        &self,
        domain_id: Option<String>,
        parent_id: Option<String>,
        caller_domain: Option<String>,
    ) -> ApiResult<Placement> {
        let parent =
            match &parent_id {
                Some(pid) => Some(self.store.get_project(pid).await?.ok_or_else(|| {
                    ApiError::BadRequest(format!("Could not find project: {pid}."))
                })?),
                None => None,
            };
        let domain_id = domain_id
            .or_else(|| parent.as_ref().map(|p| domain_of(p).to_string()))
            .or(caller_domain)
            .unwrap_or_else(|| self.config.identity.default_domain_id.clone());
        Ok(Placement { domain_id, parent })
    }

    /// Creates a project where `placement` says, under the hierarchy rules. Nobody holds a role
    /// on a new project yet, so cached validations stay good.
    pub async fn create_project(&self, at: Placement, new: NewProject) -> ApiResult<Project> {
        let domain = self.store.get_domain(&at.domain_id).await?.ok_or_else(|| {
            ApiError::BadRequest(format!("Could not find domain: {}.", at.domain_id))
        })?;
        let parent = at.parent.unwrap_or_else(|| domain.clone());
        let parent_domain = domain_of(&parent);
        if parent_domain != domain.id {
            return Err(ApiError::BadRequest(format!(
                "Cannot create project, since it specifies its domain_id {}, but specifies a parent in a different domain ({parent_domain}).",
                domain.id
            )));
        }
        let mut chain: Vec<Project> = if parent.is_domain {
            Vec::new()
        } else {
            std::iter::once(parent.clone())
                .chain(self.ancestors_of(&parent.id).await?)
                .collect()
        };
        chain.push(domain.clone());
        if let Some(off) = chain.iter().find(|p| !p.enabled) {
            return Err(ApiError::BadRequest(format!(
                "cannot create a project in a branch containing a disabled project: {}",
                off.id
            )));
        }
        // Depth counts the new project and its project ancestors (the domain is not a level).
        if chain.len() > self.max_project_depth() {
            return Err(ApiError::ForbiddenNotSecurity(format!(
                "Max hierarchy depth reached for {} branch.",
                parent.id
            )));
        }
        let project = Project {
            id: baton_store::new_id(),
            name: new.name,
            domain_id: domain.id.clone(),
            parent_id: Some(parent.id.clone()),
            enabled: new.enabled,
            is_domain: false,
            description: new.description,
            extra: Some(Value::Object(new.extra).to_string()),
        };
        self.store.create_project(&project).await?;
        if !new.tags.is_empty() {
            self.store.set_project_tags(&project.id, &new.tags).await?;
        }
        self.set_immutable(&project.id, new.immutable.map(Some))
            .await?;
        self.audit()
            .resource("created", "project", &project.id)
            .await;
        Ok(project)
    }

    /// `POST /v3/projects` with `is_domain: true`: a domain, which must be a root.
    pub async fn create_project_acting_as_domain(
        &self,
        at_root: bool,
        new: NewProject,
    ) -> ApiResult<Project> {
        if !at_root {
            return Err(ApiError::BadRequest(
                "only root projects are allowed to act as domains.".into(),
            ));
        }
        self.create_domain(None, new).await
    }

    /// Applies a PATCH to `project` under the rules (domain, parent and `is_domain` do not
    /// change; enabling needs enabled ancestors, disabling needs a disabled subtree) and
    /// returns the stored project.
    pub async fn update_project(
        &self,
        mut project: Project,
        changes: ProjectChanges,
    ) -> ApiResult<Project> {
        if let Some(d) = &changes.domain_id {
            if d.as_deref() != Some(project.domain_id.as_str()) {
                return Err(ApiError::BadRequest(
                    "Update of `domain_id` is not allowed.".into(),
                ));
            }
        }
        self.check_mutable_update(&project, &changes).await?;
        if let Some(p) = &changes.parent_id {
            if *p != project.parent_id {
                return Err(ApiError::ForbiddenNotSecurity(
                    "Update of `parent_id` is not allowed.".into(),
                ));
            }
        }
        if changes.is_domain == Some(true) {
            return Err(ApiError::BadRequest(
                "Update of `is_domain` is not allowed.".into(),
            ));
        }
        match changes.enabled {
            Some(true) if !project.enabled => {
                let ancestors = self.ancestors_of(&project.id).await?;
                let disabled = ancestors.iter().find(|p| !p.enabled);
                if let Some(off) = disabled {
                    return Err(ApiError::ForbiddenNotSecurity(format!(
                        "Cannot enable project {} since it has disabled parents",
                        off.id
                    )));
                }
            }
            Some(false) if project.enabled => {
                let below = self.subtree_of(&project.id).await?;
                if below.iter().any(|p| p.enabled) {
                    return Err(ApiError::ForbiddenNotSecurity(format!(
                        "Cannot disable project {} since its subtree contains enabled projects.",
                        project.id
                    )));
                }
            }
            _ => {}
        }
        let (tags, immutable) = (changes.tags.clone(), changes.immutable);
        changes.apply(&mut project);
        self.save_project(&project, tags.as_deref()).await?;
        self.set_immutable(&project.id, immutable).await?;
        self.audit()
            .resource("updated", "project", &project.id)
            .await;
        Ok(project)
    }

    async fn save_project(&self, project: &Project, tags: Option<&[String]>) -> ApiResult<()> {
        self.store.update_project(project).await?;
        if let Some(tags) = tags {
            self.store.set_project_tags(&project.id, tags).await?;
        }
        // Tokens show project and domain names, and a disabled one stops validating.
        self.changed().await;
        Ok(())
    }

    /// Deletes a project that must be a leaf, with its assignments; tokens scoped to it stop
    /// validating everywhere (Keystone's project-deleted revocation event).
    pub async fn delete_project(&self, project: &Project) -> ApiResult<()> {
        self.check_mutable_delete(project).await?;
        if self.store.project_has_children(&project.id).await? {
            return Err(ApiError::ForbiddenNotSecurity(format!(
                "Cannot delete the project {} since it is not a leaf in the hierarchy. Use the cascade option if you want to delete a whole subtree.",
                project.id
            )));
        }
        self.store.delete_project(&project.id).await?;
        // Keystone deletes the project's trusts with it.
        self.store
            .delete_trusts_for_project(&project.id, self.now())
            .await?;
        // Keystone deletes the project's credentials (EC2 ones included) with the project.
        self.store
            .delete_credentials_of_project(&project.id)
            .await?;
        self.revoke(RevocationEvent {
            project_id: Some(project.id.clone()),
            ..RevocationEvent::default()
        })
        .await?;
        self.changed().await;
        self.audit()
            .resource("deleted", "project", &project.id)
            .await;
        Ok(())
    }

    /// Replaces a project's tags (tags appear in no token).
    pub async fn set_project_tags(&self, project_id: &str, tags: &[String]) -> ApiResult<()> {
        self.check_tags_mutable(project_id, "update").await?;
        Ok(self.store.set_project_tags(project_id, tags).await?)
    }

    /// Adds one tag (no change when present); the whole list must stay within
    /// [`TAGS_PER_PROJECT`].
    pub async fn add_project_tag(&self, project_id: &str, tag: &str) -> ApiResult<()> {
        self.check_tags_mutable(project_id, "create").await?;
        let mut tags = self.store.list_project_tags(project_id).await?;
        if !tags.iter().any(|t| t == tag) {
            tags.push(tag.to_string());
            check_tags("tags", &tags)?;
            self.store.set_project_tags(project_id, &tags).await?;
        }
        Ok(())
    }

    /// Removes one tag; 404 when the project does not have it.
    pub async fn remove_project_tag(&self, project_id: &str, tag: &str) -> ApiResult<()> {
        self.check_tags_mutable(project_id, "delete").await?;
        if self.store.delete_project_tag(project_id, tag).await? {
            Ok(())
        } else {
            Err(tag_not_found(tag))
        }
    }

    // ----- the immutable option ----------------------------------------------------------------

    /// Whether a project or domain carries `immutable: true`.
    pub async fn is_immutable(&self, id: &str) -> ApiResult<bool> {
        let options = self.store.project_options_of(&[id.to_string()]).await?;
        Ok(options.get(id).is_some_and(|o| immutable_in(o)))
    }

    /// Writes `options.immutable` when the body named it (`Some(None)` removes the option).
    async fn set_immutable(&self, id: &str, immutable: Option<Option<bool>>) -> ApiResult<()> {
        if let Some(value) = immutable {
            let text = value.map(|b| b.to_string());
            self.store
                .set_project_option(id, IMMUTABLE_ID, text.as_deref())
                .await?;
        }
        Ok(())
    }

    /// Keystone's `check_immutable_update`: an immutable project or domain accepts one change
    /// only, clearing `immutable`.
    async fn check_mutable_update(&self, p: &Project, changes: &ProjectChanges) -> ApiResult<()> {
        if self.is_immutable(&p.id).await?
            && (changes.attributes > 1 || !matches!(changes.immutable, Some(None | Some(false))))
        {
            return Err(ApiError::ForbiddenNotSecurity(format!(
                "Unable to update immutable {} resource: `{}. Set resource option \"immutable\" to false first.",
                kind_of(p),
                p.id
            )));
        }
        Ok(())
    }

    /// Keystone's `check_immutable_delete`, for the project or domain and, for a domain, each
    /// project it would take with it.
    async fn check_mutable_delete(&self, p: &Project) -> ApiResult<()> {
        let mut doomed = vec![p.clone()];
        if p.is_domain {
            doomed.extend(self.subtree_of(&p.id).await?);
        }
        let ids: Vec<String> = doomed.iter().map(|d| d.id.clone()).collect();
        let options = self.store.project_options_of(&ids).await?;
        for d in &doomed {
            if options.get(&d.id).is_some_and(|o| immutable_in(o)) {
                return Err(ApiError::ForbiddenNotSecurity(format!(
                    "Unable to delete immutable {} resource: `{}. Set resource option \"immutable\" to false first.",
                    kind_of(d),
                    d.id
                )));
            }
        }
        Ok(())
    }

    /// Tags of an immutable project do not change (Keystone's three messages).
    async fn check_tags_mutable(&self, project_id: &str, verb: &str) -> ApiResult<()> {
        if self.is_immutable(project_id).await? {
            return Err(ApiError::ForbiddenNotSecurity(format!(
                "Cannot {verb} project tags for {project_id}, project is immutable. Set \"immutable\" option to false before creating project tags."
            )));
        }
        Ok(())
    }

    // ----- domains ---------------------------------------------------------------------------

    /// Creates a domain row, with the id given (`explicit_domain_id`) or a new one. Nobody's
    /// token involves a new domain yet: cached validations stay good.
    pub async fn create_domain(&self, id: Option<String>, new: NewProject) -> ApiResult<Project> {
        if let Some(id) = &id {
            if self.store.get_project(id).await?.is_some() {
                return Err(ApiError::Conflict(format!(
                    "Conflict occurred attempting to store domain - Duplicate ID, {id}."
                )));
            }
        }
        let domain = Project {
            id: id.unwrap_or_else(baton_store::new_id),
            name: new.name,
            domain_id: ROOT_DOMAIN_ID.into(),
            parent_id: None,
            enabled: new.enabled,
            is_domain: true,
            description: new.description,
            extra: Some(Value::Object(new.extra).to_string()),
        };
        self.store.create_project(&domain).await?;
        if !new.tags.is_empty() {
            self.store.set_project_tags(&domain.id, &new.tags).await?;
        }
        self.set_immutable(&domain.id, new.immutable.map(Some))
            .await?;
        self.audit().resource("created", "domain", &domain.id).await;
        Ok(domain)
    }

    /// Applies a PATCH to a domain; the default domain cannot be disabled.
    pub async fn update_domain(
        &self,
        mut domain: Project,
        changes: ProjectChanges,
    ) -> ApiResult<Project> {
        self.check_mutable_update(&domain, &changes).await?;
        if changes.enabled == Some(false) && domain.id == self.config.identity.default_domain_id {
            return Err(ApiError::ForbiddenNotSecurity(
                "The default domain cannot be disabled.".into(),
            ));
        }
        let (tags, immutable) = (changes.tags.clone(), changes.immutable);
        changes.apply(&mut domain);
        self.save_project(&domain, tags.as_deref()).await?;
        self.set_immutable(&domain.id, immutable).await?;
        // Keystone announces a domain's update as both a project and a domain update.
        self.audit()
            .resource("updated", "project", &domain.id)
            .await;
        self.audit().resource("updated", "domain", &domain.id).await;
        Ok(domain)
    }

    /// Deletes a disabled domain with its projects, users and groups; every token of its users
    /// and projects stops validating.
    pub async fn delete_domain(&self, domain: &Project) -> ApiResult<()> {
        self.check_mutable_delete(domain).await?;
        if domain.enabled {
            return Err(ApiError::ForbiddenNotSecurity(
                "Cannot delete a domain that is enabled, please disable it first.".into(),
            ));
        }
        // One event covers every token of the domain's users and of its projects (the domain
        // matches a token's user domain and its project's domain).
        self.revoke(RevocationEvent {
            domain_id: Some(domain.id.clone()),
            ..RevocationEvent::default()
        })
        .await?;
        // Children before parents, so every project is a leaf when it goes.
        let doomed: Vec<String> = self
            .subtree_of(&domain.id)
            .await?
            .into_iter()
            .map(|p| p.id)
            .collect();
        for id in doomed.iter().rev() {
            self.store.delete_project(id).await?;
            self.store.delete_trusts_for_project(id, self.now()).await?;
        }
        // Keystone deletes the domain's identity providers (and so their users) with it.
        for idp in self.store.identity_providers_of_domain(&domain.id).await? {
            match self.delete_identity_provider(&idp).await {
                Ok(()) | Err(ApiError::NotFound(_)) => {}
                Err(e) => return Err(e),
            }
        }
        self.store.delete_domain_identities(&domain.id).await?;
        self.store.delete_project(&domain.id).await?;
        self.changed().await;
        self.audit().resource("deleted", "domain", &domain.id).await;
        Ok(())
    }
}

fn kind_of(p: &Project) -> &'static str {
    if p.is_domain {
        "domain"
    } else {
        "project"
    }
}

/// Keystone's limits on project tags.
pub const TAG_MAX: usize = 255;
/// At most this many tags on one project or domain.
pub const TAGS_PER_PROJECT: usize = 80;

/// 404 for a tag the project does not have.
pub fn tag_not_found(tag: &str) -> ApiError {
    ApiError::NotFound(format!("Tag {tag} was not found."))
}

/// A whole tag list: at most [`TAGS_PER_PROJECT`], unique, each valid (see [`check_tag`]);
/// `path` names the field in the 400.
pub fn check_tags(path: &str, tags: &[String]) -> ApiResult<()> {
    if tags.len() > TAGS_PER_PROJECT {
        return Err(ApiError::invalid(
            path,
            format!("is too long (at most {TAGS_PER_PROJECT} tags)"),
        ));
    }
    for (i, t) in tags.iter().enumerate() {
        check_tag(&format!("{path}/{i}"), t)?;
        if tags[..i].contains(t) {
            return Err(ApiError::invalid(
                path,
                format!("has non-unique elements ('{t}')"),
            ));
        }
    }
    Ok(())
}

/// One tag: 1 to [`TAG_MAX`] characters, without `/` or `,`.
pub fn check_tag(path: &str, t: &str) -> ApiResult<()> {
    if t.is_empty() || t.chars().count() > TAG_MAX {
        return Err(ApiError::invalid(
            path,
            format!("'{t}' must be 1 to {TAG_MAX} characters"),
        ));
    }
    if t.contains('/') || t.contains(',') {
        return Err(ApiError::invalid(
            path,
            format!("'{t}' does not match '^[^,/]*$'"),
        ));
    }
    Ok(())
}
