//! What validating a token new to this node reads about its user, project and role
//! assignments, kept in memory so that a cold validation is a decryption and a few lookups
//! rather than six SQL round trips (users, domains, passwords, projects, assignments).
//!
//! Filled on demand, not loaded whole: a cloud with a million users does not fit, and the
//! tokens a node sees name few of them. Bounded in bytes (`[baton] snapshot_cache_bytes`),
//! each entry lives `validation_cache_ttl` at most (writes by Keystone nodes on a shared
//! database are not announced), and every write this node makes or learns of from the change
//! feed empties it, exactly as it empties the validation cache ([`Snapshot::invalidate`]).
//! Only validation reads it: issuing and the admin API read the database.

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use baton_store::{Assignment, Project, SystemAssignment, User};
use chrono::NaiveDateTime;

use crate::error::ApiResult;

/// A user as validation needs it: the row and when its password expires (tokens show it).
#[derive(Debug, Clone)]
pub struct UserFacts {
    /// The user row (its `enabled` already accounts for inactivity).
    pub user: User,
    /// `password_expires_at` of the current password, if any.
    pub password_expires_at: Option<NaiveDateTime>,
}

#[derive(Clone, Hash, PartialEq, Eq)]
enum Key {
    User(String),
    /// Projects and domains (one table).
    Project(String),
    /// A user's role assignments on projects and domains, direct and through groups.
    Assignments(String),
    /// A user's role assignments on the system, direct and through groups.
    SystemAssignments(String),
}

#[derive(Clone)]
enum Fact {
    User(Arc<UserFacts>),
    Project(Arc<Project>),
    Assignments(Arc<Vec<Assignment>>),
    SystemAssignments(Arc<Vec<SystemAssignment>>),
}

/// A fact and the write generation its read began in: one read before a write is never served
/// after it, even if it was stored after the cache was emptied.
#[derive(Clone)]
struct Slot {
    generation: u64,
    fact: Fact,
}

/// Fixed cost of an entry beside its strings (moka's node, the key, the `Arc`s).
const ENTRY_OVERHEAD: usize = 160;

fn weigh(key: &Key, slot: &Slot) -> u32 {
    let key_len = match key {
        Key::User(s) | Key::Project(s) | Key::Assignments(s) | Key::SystemAssignments(s) => s.len(),
    };
    let opt = |s: &Option<String>| s.as_ref().map_or(0, String::len);
    let fact = match &slot.fact {
        Fact::User(u) => {
            let u = &u.user;
            u.id.len()
                + u.name.len()
                + u.domain_id.len()
                + opt(&u.default_project_id)
                + opt(&u.extra)
                + 120
        }
        Fact::Project(p) => {
            p.id.len()
                + p.name.len()
                + p.domain_id.len()
                + opt(&p.parent_id)
                + opt(&p.description)
                + opt(&p.extra)
                + 150
        }
        Fact::Assignments(list) => list
            .iter()
            .map(|a| a.actor_id.len() + a.target_id.len() + a.role_id.len() + 80)
            .sum(),
        Fact::SystemAssignments(list) => list
            .iter()
            .map(|a| a.actor_id.len() + a.role_id.len() + 56)
            .sum(),
    };
    u32::try_from(ENTRY_OVERHEAD + key_len + fact).unwrap_or(u32::MAX)
}

/// Users, projects and role assignments as of recent reads (see the module comment).
pub struct Snapshot {
    /// `None` when `snapshot_cache_bytes` is 0: every read goes to the database.
    cache: Option<moka::sync::Cache<Key, Slot>>,
    generation: AtomicU64,
}

impl Snapshot {
    /// A snapshot of at most `max_bytes` (0: none) whose entries live at most `ttl`.
    pub fn new(max_bytes: u64, ttl: Duration) -> Snapshot {
        let cache = (max_bytes > 0).then(|| {
            moka::sync::Cache::builder()
                .max_capacity(max_bytes)
                .weigher(weigh)
                .time_to_live(ttl)
                .build()
        });
        Snapshot {
            cache,
            generation: AtomicU64::new(0),
        }
    }

    /// Forgets everything (after a write here or on another node).
    pub fn invalidate(&self) {
        self.generation.fetch_add(1, Ordering::AcqRel);
        if let Some(cache) = &self.cache {
            cache.invalidate_all();
        }
    }

    /// Approximate bytes held (what the bound counts), after pending evictions.
    pub fn weighted_size(&self) -> u64 {
        self.cache.as_ref().map_or(0, |c| {
            c.run_pending_tasks();
            c.weighted_size()
        })
    }

    /// The fact under `key`, or `load`'s answer, kept when it found something and no write
    /// came while it read. What does not exist is not remembered: a row created by a
    /// Keystone node must be found at once.
    async fn get<Fut>(&self, key: Key, load: Fut) -> ApiResult<Option<Fact>>
    where
        Fut: Future<Output = ApiResult<Option<Fact>>>,
    {
        let Some(cache) = &self.cache else {
            return load.await;
        };
        let began = self.generation.load(Ordering::Acquire);
        if let Some(slot) = cache.get(&key) {
            if slot.generation == began {
                return Ok(Some(slot.fact));
            }
        }
        let fact = load.await?;
        if let Some(fact) = &fact {
            if self.generation.load(Ordering::Acquire) == began {
                cache.insert(
                    key,
                    Slot {
                        generation: began,
                        fact: fact.clone(),
                    },
                );
            }
        }
        Ok(fact)
    }

    /// The user `id` with its password expiry, from `load` when not held.
    pub async fn user(
        &self,
        id: &str,
        load: impl Future<Output = ApiResult<Option<UserFacts>>>,
    ) -> ApiResult<Option<Arc<UserFacts>>> {
        let load = async { Ok(load.await?.map(|u| Fact::User(Arc::new(u)))) };
        Ok(match self.get(Key::User(id.to_string()), load).await? {
            Some(Fact::User(u)) => Some(u),
            _ => None,
        })
    }

    /// The project or domain `id`, from `load` when not held.
    pub async fn project(
        &self,
        id: &str,
        load: impl Future<Output = ApiResult<Option<Project>>>,
    ) -> ApiResult<Option<Arc<Project>>> {
        let load = async { Ok(load.await?.map(|p| Fact::Project(Arc::new(p)))) };
        Ok(match self.get(Key::Project(id.to_string()), load).await? {
            Some(Fact::Project(p)) => Some(p),
            _ => None,
        })
    }

    /// The user's assignments on projects and domains, from `load` when not held.
    pub async fn assignments_of_user(
        &self,
        user_id: &str,
        load: impl Future<Output = ApiResult<Vec<Assignment>>>,
    ) -> ApiResult<Arc<Vec<Assignment>>> {
        let load = async { Ok(Some(Fact::Assignments(Arc::new(load.await?)))) };
        Ok(
            match self
                .get(Key::Assignments(user_id.to_string()), load)
                .await?
            {
                Some(Fact::Assignments(a)) => a,
                _ => Arc::default(),
            },
        )
    }

    /// The user's assignments on the system, from `load` when not held.
    pub async fn system_assignments_of_user(
        &self,
        user_id: &str,
        load: impl Future<Output = ApiResult<Vec<SystemAssignment>>>,
    ) -> ApiResult<Arc<Vec<SystemAssignment>>> {
        let load = async { Ok(Some(Fact::SystemAssignments(Arc::new(load.await?)))) };
        Ok(
            match self
                .get(Key::SystemAssignments(user_id.to_string()), load)
                .await?
            {
                Some(Fact::SystemAssignments(a)) => a,
                _ => Arc::default(),
            },
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn project(id: &str, name: &str) -> Project {
        Project {
            id: id.into(),
            name: name.into(),
            domain_id: "default".into(),
            parent_id: Some("default".into()),
            enabled: true,
            is_domain: false,
            description: None,
            extra: None,
        }
    }

    async fn read(s: &Snapshot, id: &str, name: &str) -> String {
        let row = project(id, name);
        s.project(id, async move { Ok(Some(row)) })
            .await
            .unwrap()
            .unwrap()
            .name
            .clone()
    }

    #[tokio::test]
    async fn a_write_is_seen_by_the_next_read() {
        let s = Snapshot::new(1 << 20, Duration::from_secs(300));
        assert_eq!(read(&s, "p", "old").await, "old");
        // Held: the loader's new answer is not consulted.
        assert_eq!(read(&s, "p", "new").await, "old");
        s.invalidate();
        assert_eq!(read(&s, "p", "new").await, "new");
    }

    #[tokio::test]
    async fn a_read_that_spans_a_write_is_not_kept() {
        let s = Snapshot::new(1 << 20, Duration::from_secs(300));
        let row = project("p", "old");
        let got = s
            .project("p", async {
                // The write lands while the old row is being read.
                s.invalidate();
                Ok(Some(row))
            })
            .await
            .unwrap()
            .unwrap();
        assert_eq!(got.name, "old");
        assert_eq!(read(&s, "p", "new").await, "new");
    }

    #[tokio::test]
    async fn absent_rows_are_not_remembered() {
        let s = Snapshot::new(1 << 20, Duration::from_secs(300));
        assert!(s.project("p", async { Ok(None) }).await.unwrap().is_none());
        assert_eq!(read(&s, "p", "created").await, "created");
    }

    #[tokio::test]
    async fn the_bound_is_in_bytes() {
        let s = Snapshot::new(64 * 1024, Duration::from_secs(300));
        for i in 0..2_000 {
            read(&s, &format!("project-{i:04}"), &"n".repeat(64)).await;
        }
        let held = s.weighted_size();
        assert!(held <= 64 * 1024, "{held} bytes held");
        assert!(
            held > 32 * 1024,
            "{held} bytes held: the bound should be used"
        );
    }

    #[tokio::test]
    async fn zero_bytes_reads_through() {
        let s = Snapshot::new(0, Duration::from_secs(300));
        assert_eq!(read(&s, "p", "old").await, "old");
        assert_eq!(read(&s, "p", "new").await, "new");
        assert_eq!(s.weighted_size(), 0);
    }
}
