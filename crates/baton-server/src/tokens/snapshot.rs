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

/// Where a check reads users, projects and role assignments.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Read {
    /// The database: issuing (which has just checked credentials against it) and the admin
    /// API.
    Database,
    /// The node's [`Snapshot`], the database for what it does not hold: validation, and the
    /// listings Keystone memoizes in its computed-assignments cache (`/v3/auth/projects`,
    /// `/v3/users/{id}/projects`, effective `/v3/role_assignments?user.id=`).
    Snapshot,
}

#[derive(Clone, Hash, PartialEq, Eq)]
pub(crate) enum Key {
    User(String),
    /// Projects and domains (one table).
    Project(String),
    /// A user's role assignments on projects and domains, direct and through groups.
    Assignments(String),
    /// A user's role assignments on the system, direct and through groups.
    SystemAssignments(String),
}

#[derive(Clone)]
pub(crate) enum Fact {
    User(Arc<UserFacts>),
    Project(Arc<Project>),
    Assignments(Arc<Vec<Assignment>>),
    SystemAssignments(Arc<Vec<SystemAssignment>>),
}

/// What the snapshot keeps, each kind under its own key in the one byte-bounded cache.
pub(crate) trait Kept: Sized {
    fn key(id: &str) -> Key;
    fn into_fact(this: Arc<Self>) -> Fact;
    fn from_fact(fact: Fact) -> Option<Arc<Self>>;
}

macro_rules! kept {
    ($ty:ty, $variant:ident) => {
        impl Kept for $ty {
            fn key(id: &str) -> Key {
                Key::$variant(id.to_string())
            }
            fn into_fact(this: Arc<Self>) -> Fact {
                Fact::$variant(this)
            }
            fn from_fact(fact: Fact) -> Option<Arc<Self>> {
                match fact {
                    Fact::$variant(v) => Some(v),
                    _ => None,
                }
            }
        }
    };
}

kept!(UserFacts, User);
kept!(Project, Project);
kept!(Vec<Assignment>, Assignments);
kept!(Vec<SystemAssignment>, SystemAssignments);

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

    /// What `id` names, from the snapshot when `read` allows and it holds it, else from
    /// `load`; kept when found and no write came while it read. What does not exist is not
    /// remembered: a row created by a Keystone node must be found at once.
    pub(crate) async fn read<T: Kept>(
        &self,
        read: Read,
        id: &str,
        load: impl Future<Output = ApiResult<Option<T>>>,
    ) -> ApiResult<Option<Arc<T>>> {
        let cache = match (&self.cache, read) {
            (Some(cache), Read::Snapshot) => cache,
            _ => return Ok(load.await?.map(Arc::new)),
        };
        let key = T::key(id);
        let began = self.generation.load(Ordering::Acquire);
        if let Some(slot) = cache.get(&key).filter(|s| s.generation == began) {
            return Ok(T::from_fact(slot.fact));
        }
        let Some(value) = load.await?.map(Arc::new) else {
            return Ok(None);
        };
        if self.generation.load(Ordering::Acquire) == began {
            let fact = T::into_fact(value.clone());
            cache.insert(
                key,
                Slot {
                    generation: began,
                    fact,
                },
            );
        }
        Ok(Some(value))
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
        s.read(Read::Snapshot, id, async move { Ok(Some(row)) })
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
            .read(Read::Snapshot, "p", async {
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
        let absent = s.read::<Project>(Read::Snapshot, "p", async { Ok(None) });
        assert!(absent.await.unwrap().is_none());
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
