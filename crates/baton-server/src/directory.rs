//! A snapshot of the rarely-changing data every token needs: roles, role implications and the
//! service catalog. Reloaded after local writes and at most `MAX_AGE` after writes by others.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use baton_store::{Role, Store};
use baton_types::{CatalogEndpoint, CatalogService, TokenServiceProvider};
use bytes::Bytes;

use crate::error::ApiResult;

/// How stale the snapshot may get with respect to writes made by other nodes.
const MAX_AGE: Duration = Duration::from_secs(5);
/// Rendered catalogs kept per project before the memo starts over (only clouds whose endpoint
/// URLs name the project have more than one).
const CATALOG_MEMO: usize = 10_000;

/// Roles, role implications and the service catalog as of one read of the database.
pub struct Directory {
    /// Every role by id.
    pub roles: HashMap<String, Role>,
    /// prior role id -> roles it implies directly.
    pub implied: HashMap<String, Vec<String>>,
    /// The enabled services with their enabled endpoints, before project-id substitution.
    pub catalog: Vec<CatalogService>,
    /// Some endpoint URL holds a project placeholder, so catalogs differ per project.
    per_project: bool,
    /// Catalog JSON arrays rendered so far, by project (`None` when they do not differ):
    /// every cached token of a project shares one copy.
    catalog_json: Mutex<HashMap<Option<String>, Bytes>>,
    /// Endpoint filtering (`OS-EP-FILTER`): the endpoints each project is associated with,
    /// directly or through its endpoint groups (disabled ones included, as Keystone counts
    /// them: a project whose only association is a disabled endpoint gets an empty catalog).
    project_endpoints: HashMap<String, HashSet<String>>,
    /// `[endpoint_filter] return_all_endpoints_if_no_filter`: a project without associations
    /// (and a token without a project) gets the whole catalog, else none.
    return_all_if_no_filter: bool,
    /// The enabled federation service providers, which every token lists.
    service_providers: Vec<TokenServiceProvider>,
}

impl Directory {
    /// `token["service_providers"]`: the enabled ones, absent when there are none.
    pub fn service_providers(&self) -> Option<Vec<TokenServiceProvider>> {
        (!self.service_providers.is_empty()).then(|| self.service_providers.clone())
    }

    /// The role ids plus everything they imply, transitively, minus domain-specific roles
    /// (Keystone keeps those out of tokens and lets only what they imply through).
    pub fn expand_roles(&self, direct: impl IntoIterator<Item = String>) -> Vec<Role> {
        let mut seen: HashSet<String> = HashSet::new();
        let mut order = Vec::new();
        let mut stack: Vec<String> = direct.into_iter().collect();
        stack.reverse();
        while let Some(id) = stack.pop() {
            if !seen.insert(id.clone()) {
                continue;
            }
            order.push(id.clone());
            if let Some(next) = self.implied.get(&id) {
                for n in next.iter().rev() {
                    stack.push(n.clone());
                }
            }
        }
        order
            .into_iter()
            .filter_map(|id| self.roles.get(&id))
            .filter(|r| r.domain_id.is_none())
            .cloned()
            .collect()
    }

    /// The catalog for a token scoped to `project_id`: `$(project_id)s`-style placeholders in
    /// endpoint URLs are filled in, and endpoints whose placeholders cannot be are left out.
    /// With endpoint filtering, a project associated with endpoints sees only those, and a
    /// service left without endpoints is dropped (as in Keystone).
    pub fn catalog_for(&self, project_id: Option<&str>) -> Vec<CatalogService> {
        let filter = project_id.and_then(|p| self.project_endpoints.get(p));
        if filter.is_none() && !self.return_all_if_no_filter {
            return Vec::new();
        }
        let mut out = self.catalog.clone();
        if let Some(allowed) = filter {
            for svc in &mut out {
                svc.endpoints.retain(|ep| allowed.contains(&ep.id));
            }
            out.retain(|svc| !svc.endpoints.is_empty());
        }
        for svc in &mut out {
            svc.endpoints
                .retain_mut(|ep| match substitute(&ep.url, project_id) {
                    Some(url) => {
                        ep.url = url;
                        true
                    }
                    None => false,
                });
        }
        out
    }

    /// The catalog of [`Directory::catalog_for`] as a JSON array, rendered once per project
    /// and shared.
    pub fn catalog_json(&self, project_id: Option<&str>) -> serde_json::Result<Bytes> {
        let filtered = project_id.is_some_and(|p| self.project_endpoints.contains_key(p));
        let key = if self.per_project || filtered {
            project_id.map(str::to_string)
        } else {
            None
        };
        let mut memo = self.catalog_json.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(json) = memo.get(&key) {
            return Ok(json.clone());
        }
        let json = Bytes::from(serde_json::to_vec(&self.catalog_for(project_id))?);
        if memo.len() >= CATALOG_MEMO {
            memo.clear();
        }
        memo.insert(key, json.clone());
        Ok(json)
    }
}

/// The URL still holds a `$(...)s` or `%(...)s` placeholder.
fn has_placeholder(url: &str) -> bool {
    url.contains("$(") || url.contains("%(")
}

fn substitute(url: &str, project_id: Option<&str>) -> Option<String> {
    if !has_placeholder(url) {
        return Some(url.to_string());
    }
    let p = project_id?;
    let mut u = url.to_string();
    for key in ["project_id", "tenant_id"] {
        u = u
            .replace(&format!("$({key})s"), p)
            .replace(&format!("%({key})s"), p);
    }
    (!has_placeholder(&u)).then_some(u)
}

/// The current [`Directory`], reloaded when older than a few seconds or after a local write.
pub struct DirectoryCache {
    /// `[endpoint_filter] return_all_endpoints_if_no_filter`.
    return_all_if_no_filter: bool,
    current: RwLock<Option<(Instant, Arc<Directory>)>>,
    /// Bumped by [`DirectoryCache::invalidate`]: a snapshot loaded across a write may hold the
    /// old data, so it serves its own caller but is not kept.
    writes: AtomicU64,
}

impl DirectoryCache {
    /// An empty cache; `return_all_if_no_filter` is `[endpoint_filter]
    /// return_all_endpoints_if_no_filter`.
    pub fn new(return_all_if_no_filter: bool) -> DirectoryCache {
        DirectoryCache {
            return_all_if_no_filter,
            current: RwLock::default(),
            writes: AtomicU64::default(),
        }
    }

    /// Drops the snapshot after a local write, so the next request reads the new data.
    pub fn invalidate(&self) {
        self.writes.fetch_add(1, Ordering::AcqRel);
        *self.current.write().unwrap_or_else(|e| e.into_inner()) = None;
    }

    /// The snapshot, read again from `store` when there is none or it is too old.
    pub async fn get(&self, store: &Store) -> ApiResult<Arc<Directory>> {
        if let Some((at, dir)) = &*self.current.read().unwrap_or_else(|e| e.into_inner()) {
            if at.elapsed() < MAX_AGE {
                return Ok(dir.clone());
            }
        }
        let began = self.writes.load(Ordering::Acquire);
        let dir = Arc::new(load(store, self.return_all_if_no_filter).await?);
        let mut current = self.current.write().unwrap_or_else(|e| e.into_inner());
        if self.writes.load(Ordering::Acquire) == began {
            *current = Some((Instant::now(), dir.clone()));
        }
        Ok(dir)
    }
}

/// Each project's associated endpoints (Keystone's `list_endpoints_for_project`): its own
/// associations to endpoints that exist, and every endpoint matching one of its groups'
/// filters. Projects with no association are absent.
fn project_endpoints(
    rows: baton_store::EndpointFilterRows,
    endpoints: &[baton_store::Endpoint],
) -> HashMap<String, HashSet<String>> {
    let mut out: HashMap<String, HashSet<String>> = HashMap::new();
    let exists: HashSet<&str> = endpoints.iter().map(|e| e.id.as_str()).collect();
    for (project, endpoint) in rows.project_endpoints {
        if exists.contains(endpoint.as_str()) {
            out.entry(project).or_default().insert(endpoint);
        }
    }
    let groups: HashMap<&str, &baton_store::EndpointGroup> =
        rows.groups.iter().map(|g| (g.id.as_str(), g)).collect();
    for (project, group) in &rows.project_groups {
        let Some(g) = groups.get(group.as_str()) else {
            continue;
        };
        let hits = endpoints
            .iter()
            .filter(|e| crate::identity::catalog::in_endpoint_group(g, e));
        for e in hits {
            out.entry(project.clone()).or_default().insert(e.id.clone());
        }
    }
    out
}

async fn load(store: &Store, return_all_if_no_filter: bool) -> ApiResult<Directory> {
    let roles = store.list_roles().await?;
    let mut implied: HashMap<String, Vec<String>> = HashMap::new();
    for (prior, imp) in store.list_implied_roles().await? {
        implied.entry(prior).or_default().push(imp);
    }
    let services = store.list_services().await?;
    let endpoints = store.list_endpoints().await?;
    let mut catalog: Vec<CatalogService> = services
        .into_iter()
        .filter(|s| s.enabled)
        .map(|s| CatalogService {
            endpoints: endpoints
                .iter()
                .filter(|e| e.enabled && e.service_id == s.id)
                .map(|e| CatalogEndpoint {
                    id: e.id.clone(),
                    interface: e.interface.clone(),
                    region: e.region_id.clone(),
                    region_id: e.region_id.clone(),
                    url: e.url.clone(),
                })
                .collect(),
            id: s.id,
            name: s.name,
            service_type: s.service_type,
        })
        .collect();
    catalog.sort_by(|a, b| a.service_type.cmp(&b.service_type).then(a.id.cmp(&b.id)));
    let per_project = catalog
        .iter()
        .flat_map(|s| &s.endpoints)
        .any(|e| has_placeholder(&e.url));
    let project_endpoints = project_endpoints(store.endpoint_filter_rows().await?, &endpoints);
    let service_providers = store
        .list_service_providers()
        .await?
        .into_iter()
        .filter(|sp| sp.enabled)
        .map(|sp| TokenServiceProvider {
            auth_url: sp.auth_url,
            id: sp.id,
            sp_url: sp.sp_url,
        })
        .collect();
    Ok(Directory {
        roles: roles.into_iter().map(|r| (r.id.clone(), r)).collect(),
        implied,
        catalog,
        per_project,
        catalog_json: Mutex::default(),
        project_endpoints,
        return_all_if_no_filter,
        service_providers,
    })
}
